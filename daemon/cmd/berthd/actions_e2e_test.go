package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/volume"

	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/nuvla/nuvlatest"
)

// owner calls the control plane as the box's owner (the Nuvla UI's user)
// and returns the answer; another status than want fails the test.
func (e *e2e) owner(method, path string, body any, want int) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.cp.URL()+"/api/"+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("nuvla-authn-info", nuvlatest.Owner+" "+nuvlatest.Owner+" group/nuvla-user")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, raw, want)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

// finished waits for a job created by an owner call and checks its end.
func (e *e2e) finished(created map[string]any, state, msgPart string) string {
	e.t.Helper()
	id, _ := created["location"].(string)
	job := e.waitJob(id)
	msg, _ := job["status-message"].(string)
	if job["state"] != state || !strings.Contains(msg, msgPart) {
		e.t.Fatalf("job %s (%v) ended %v: %q; want %s mentioning %q", id, job["action"], job["state"], msg, state, msgPart)
	}
	return msg
}

// TestEndToEndHostActions drives the box-level jobs through the real
// berthd with its default configuration: a reboot is refused, an update
// of a berth not installed from its package is refused, Docker objects are
// removed item by item, and both kinds of log reach the resource-log.
func TestEndToEndHostActions(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.waitOnline()
	ctx := context.Background()

	// reboot_nuvlabox: off unless the operator allows it.
	e.finished(e.owner("POST", e.box+"/reboot", nil, 202), "FAILED",
		"reboot is disabled on this box: set host.allow-reboot = true in /etc/berth/config.toml")

	// nuvlabox_update: this berthd was not installed from the .deb.
	if out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", "berth").Output(); err == nil && string(out) == "installed" {
		t.Log("berth is installed from its package here: not testing the refusal")
	} else {
		rel := e.cp.CreateResource("nuvlabox-release", map[string]any{"release": "2.19.3"})
		e.finished(e.owner("POST", e.box+"/update-nuvlabox", map[string]any{"nuvlabox-release": rel}, 202), "FAILED",
			"berth was not installed from its .deb package; upgrade it the way it was installed")
	}

	// coe_resource_actions: every item runs; one failure fails the job.
	vol := "berth-e2e-coe-" + hexID(4)
	if _, err := e.docker.VolumeCreate(ctx, volume.CreateOptions{Name: vol}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.docker.VolumeRemove(context.Background(), vol, true) })
	msg := e.finished(e.owner("POST", e.box+"/coe-resource-actions", map[string]any{"docker": []map[string]any{
		{"resource": "network", "action": "remove", "id": "berth-e2e-no-such-network"},
		{"resource": "volume", "action": "remove", "id": vol},
	}}, 202), "FAILED", `"success":true,"return-code":0,"message":"removed volume `+vol+`"`)
	if !strings.Contains(msg, `{"docker":[{"success":false,"return-code":404,`) {
		t.Fatalf("status message = %s", msg)
	}
	if _, err := e.docker.VolumeInspect(ctx, vol); err == nil {
		t.Fatal("volume still there")
	}
	e.finished(e.owner("POST", e.box+"/coe-resource-actions", map[string]any{"docker": []map[string]any{
		{"resource": "secret", "action": "remove", "id": "x"}}}, 202), "FAILED", `resource "secret" is not image, container, volume or network`)

	// fetch_nuvlabox_log: berthd's own lines.
	logID := e.owner("POST", e.box+"/create-log", map[string]any{"components": []string{"berthd"}, "lines": 500}, 201)["resource-id"].(string)
	e.finished(e.owner("POST", logID+"/fetch", nil, 202), "SUCCESS", "sent berthd: ")
	doc, _ := e.cp.Resource(logID)
	lines := mustJSON(doc["log"])
	if !strings.Contains(lines, `msg=\"starting berthd\"`) || doc["last-timestamp"] == nil {
		t.Fatalf("berthd log = %.2000s (last-timestamp %v)", lines, doc["last-timestamp"])
	}

	// fetch_deployment_log: the service's container output.
	dep := e.cp.CreateDeployment(e.box, e.component(nil))
	uuid := strings.TrimPrefix(dep, "deployment/")
	enginetest.CleanupApp(t, e.docker, uuid)
	jobID, err := e.cp.StartDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	if job := e.waitJob(jobID); job["state"] != "SUCCESS" {
		t.Fatalf("start job ended %v: %v", job["state"], job["status-message"])
	}
	svc := e.containers(uuid)[0].Labels["com.docker.compose.service"]
	var depLog string
	eventually(t, 20*time.Second, "the app's output in its log", func() (bool, string) {
		logID := e.owner("POST", dep+"/create-log", map[string]any{"components": []string{svc}}, 201)["resource-id"].(string)
		e.finished(e.owner("POST", logID+"/fetch", nil, 202), "SUCCESS", "sent "+svc+": ")
		doc, _ := e.cp.Resource(logID)
		depLog = mustJSON(doc["log"])
		return strings.Contains(depLog, "testapp: listening on"), depLog
	})
}

// TestEndToEndSSHKeys adds and revokes a key for a real user created for
// the test, as the configured host.ssh-user.
func TestEndToEndSSHKeys(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a user")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd")
	}
	e := newE2E(t)
	name := "berthe2e" + hexID(3)
	home := filepath.Join(t.TempDir(), "home")
	if out, err := exec.Command("useradd", "--create-home", "--home-dir", home, "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Skipf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("userdel", name).Run() })
	if err := os.Chmod(filepath.Dir(home), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "none.toml"), []byte("[host]\nssh-user = \""+name+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.waitOnline()

	var blob []byte
	for _, part := range []string{"ssh-ed25519", strings.Repeat("k", 32)} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	key := "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " e2e@test"
	cred := e.cp.CreateResource("credential", map[string]any{"subtype": "ssh-key", "method": "ssh-key", "public-key": key})
	file := filepath.Join(home, ".ssh", "authorized_keys")

	e.finished(e.owner("POST", e.box+"/add-ssh-key", map[string]any{"credential": cred}, 202), "SUCCESS", `"message":"key added"`)
	b, err := os.ReadFile(file)
	if err != nil || string(b) != key+"\n" {
		t.Fatalf("authorized_keys = %q, %v", b, err)
	}
	for _, p := range []string{filepath.Dir(file), file} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		uid, _ := exec.Command("id", "-u", name).Output()
		if strings.TrimSpace(string(uid)) != strconv.FormatUint(uint64(st.Uid), 10) {
			t.Fatalf("%s is owned by uid %d, not %s", p, st.Uid, uid)
		}
	}
	if nb, _ := e.cp.Resource(e.box); mustJSON(nb["ssh-keys"]) != mustJSON([]string{cred}) {
		t.Fatalf("nuvlabox ssh-keys = %v", nb["ssh-keys"])
	}
	e.finished(e.owner("POST", e.box+"/add-ssh-key", map[string]any{"credential": cred}, 202), "SUCCESS", `"message":"key was already authorized"`)
	e.finished(e.owner("POST", e.box+"/revoke-ssh-key", map[string]any{"credential": cred}, 202), "SUCCESS", `"message":"key revoked"`)
	if b, _ := os.ReadFile(file); len(b) != 0 {
		t.Fatalf("authorized_keys after revoke = %q", b)
	}
	if nb, _ := e.cp.Resource(e.box); mustJSON(nb["ssh-keys"]) != "[]" {
		t.Fatalf("nuvlabox ssh-keys = %v", nb["ssh-keys"])
	}
	bad := e.cp.CreateResource("credential", map[string]any{"subtype": "ssh-key", "public-key": "not a key"})
	e.finished(e.owner("POST", e.box+"/add-ssh-key", map[string]any{"credential": bad}, 202), "FAILED", "is not one OpenSSH public key line")
}
