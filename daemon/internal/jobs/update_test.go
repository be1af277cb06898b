package jobs

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestUpdateNotInstalledFromDeb runs the real dpkg-query: berth is not
// installed from its package on a test machine.
func TestUpdateNotInstalledFromDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err == nil {
		if out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", "berth").Output(); err == nil && string(out) == "installed" {
			t.Skip("berth is installed from its package on this machine")
		}
	}
	h := newHostRig(t, HostOptions{}, nil)
	rel := h.srv.CreateResource("nuvlabox-release", map[string]any{"release": "2.19.3"})
	job := h.action("update-nuvlabox", map[string]any{"nuvlabox-release": rel})
	expectJob(t, h.run(job), "FAILED", "berth was not installed from its .deb package; upgrade it the way it was installed")
}

// fakeCommands answers dpkg-query, apt-cache and systemd-run as a box with
// berth installed from its package would, and records the calls.
type fakeCommands struct {
	mu       sync.Mutex
	calls    []string
	versions map[string]bool // berth versions the repository has
	failRun  bool
}

func (f *fakeCommands) run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	switch name {
	case "dpkg-query":
		return []byte("installed 0.4.0"), nil
	case "apt-cache":
		if f.versions[strings.TrimPrefix(args[len(args)-1], "berth=")] {
			return []byte("Package: berth\n"), nil
		}
		return []byte("E: Version not found"), errors.New("exit status 100")
	case "systemd-run":
		if f.failRun {
			return []byte("System has not been booted with systemd as init system (PID 1). Can't operate."), errors.New("exit status 1")
		}
		return []byte("Running timer as unit: berth-update.timer"), nil
	}
	return nil, errors.New("unexpected command " + name)
}

func (f *fakeCommands) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

func TestUpdateInstalledFromDeb(t *testing.T) {
	f := &fakeCommands{versions: map[string]bool{"0.5.0": true}}
	h := newHostRig(t, HostOptions{Command: f.run}, nil)

	// A Nuvla release that is a berth version in the repository: that version.
	rel := h.srv.CreateResource("nuvlabox-release", map[string]any{"release": "0.5.0"})
	job := h.action("update-nuvlabox", map[string]any{"nuvlabox-release": rel,
		"payload": `{"project-name":"nuvlaedge","working-dir":"/opt/nuvlaedge","config-files":["docker-compose.yml"],"environment":[],"force-restart":false,"current-version":"2.19.2"}`})
	expectJob(t, h.run(job), "SUCCESS", "upgrading berth 0.4.0 to 0.5.0 in systemd unit berth-update")
	want := "systemd-run --unit=berth-update --collect --on-active=5s --description=Upgrade berth (Nuvla job " + job + ") --setenv=DEBIAN_FRONTEND=noninteractive /bin/sh -c apt-get update && apt-get install --only-upgrade -y -o Dpkg::Options::=--force-confold berth=0.5.0"
	if got := f.last(); got != want {
		t.Fatalf("ran %q\nwant %q", got, want)
	}

	// A NuvlaEdge release: the newest berth, and the message says why.
	rel = h.srv.CreateResource("nuvlabox-release", map[string]any{"release": "2.19.3"})
	job = h.action("update-nuvlabox", map[string]any{"nuvlabox-release": rel})
	expectJob(t, h.run(job), "SUCCESS", `to the newest version in systemd unit berth-update, starting in 5s; berthd restarts when the upgrade is done (journalctl -u berth-update) (Nuvla release "2.19.3" is not a berth version`)
	if got := f.last(); !strings.HasSuffix(got, "--force-confold berth") {
		t.Fatalf("ran %q", got)
	}

	// Without systemd the upgrade cannot outlive berthd's restart: refused.
	f.failRun = true
	job = h.action("update-nuvlabox", map[string]any{"nuvlabox-release": rel})
	expectJob(t, h.run(job), "FAILED", "start the upgrade in systemd unit berth-update: exit status 1: System has not been booted with systemd")

	// Unknown payload keys are refused.
	f.failRun = false
	job = h.action("update-nuvlabox", map[string]any{"nuvlabox-release": rel, "payload": `{"target":"x"}`})
	expectJob(t, h.run(job), "FAILED", `unknown field "target"`)
}
