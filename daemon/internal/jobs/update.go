package jobs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// UpdateUnit is the transient systemd unit that upgrades berth: it runs
// outside berthd's own unit, so dpkg restarting berthd does not kill it.
const UpdateUnit = "berth-update"

// updateStartDelay leaves berthd time to report the job before the
// upgrade restarts it.
const updateStartDelay = "5s"

// errNotFromDeb is the refusal when berth was installed another way.
var errNotFromDeb = errors.New("berth was not installed from its .deb package; upgrade it the way it was installed")

// updatePayload accepts the keys Nuvla sends for NuvlaEdge; they describe
// a compose installation and mean nothing to berth, so they are ignored.
type updatePayload struct {
	ProjectName    string   `json:"project-name"`
	WorkingDir     string   `json:"working-dir"`
	ConfigFiles    []string `json:"config-files"`
	Environment    []string `json:"environment"`
	ForceRestart   bool     `json:"force-restart"`
	CurrentVersion string   `json:"current-version"`
}

// debVersion matches a Debian version berth could be published as.
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

// updateBox upgrades the berth package when it came from the .deb. The
// upgrade runs in a transient systemd unit that starts a few seconds after
// the job is reported SUCCESS, as NuvlaEdge reports its update before the
// installer restarts it.
func (r *Runner) updateBox(ctx context.Context, jc *jobContext) (string, error) {
	if _, err := boxTarget(jc.job); err != nil {
		return "", err
	}
	var p updatePayload
	if err := decodePayload(jc.job.Payload, &p); err != nil {
		return "", err
	}
	run := r.opts.Host.Command
	out, err := run(ctx, "dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", "berth")
	status, current, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if err != nil || status != "installed" {
		return "", errNotFromDeb
	}

	target, note := "", ""
	if rel := affected(jc.job, "nuvlabox-release"); rel != "" {
		var doc struct {
			Release string `json:"release"`
		}
		if err := r.opts.Box.Get(ctx, rel, &doc); err != nil {
			return "", fmt.Errorf("read %s: %w", rel, err)
		}
		// Nuvla's releases are NuvlaEdge's; install that version only if
		// the berth repository has it.
		v := strings.TrimPrefix(doc.Release, "v")
		if debVersion.MatchString(v) {
			if _, err := run(ctx, "apt-cache", "show", "berth="+v); err == nil {
				target = v
			}
		}
		if target == "" {
			note = fmt.Sprintf(" (Nuvla release %q is not a berth version in the package repository: upgrading to the newest berth)", doc.Release)
		}
	}
	pkg := "berth"
	if target != "" {
		pkg = "berth=" + target
	}
	script := "apt-get update && apt-get install --only-upgrade -y -o Dpkg::Options::=--force-confold " + pkg
	if err := jc.step("upgrade", pkg); err != nil {
		return "", err
	}
	args := []string{"--unit=" + UpdateUnit, "--collect", "--on-active=" + updateStartDelay,
		"--description=Upgrade berth (Nuvla job " + jc.job.ID + ")",
		"--setenv=DEBIAN_FRONTEND=noninteractive", "/bin/sh", "-c", script}
	if out, err := run(ctx, "systemd-run", args...); err != nil {
		return "", fmt.Errorf("start the upgrade in systemd unit %s: %w: %s", UpdateUnit, err, strings.TrimSpace(string(out)))
	}
	want := "the newest version"
	if target != "" {
		want = target
	}
	return fmt.Sprintf("upgrading berth %s to %s in systemd unit %s, starting in %s; berthd restarts when the upgrade is done (journalctl -u %s)%s",
		current, want, UpdateUnit, updateStartDelay, UpdateUnit, note), nil
}
