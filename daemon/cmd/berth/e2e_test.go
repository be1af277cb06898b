package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/engine/registrytest"
)

// e2eUID is the user the CLI runs as against the real berthd: sessions
// never run as root. It needs no passwd entry.
const e2eUID = 4242

// goBuild builds a package of the module into dir and returns the binary.
func goBuild(t *testing.T, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// TestCLIEndToEnd runs the built berth, as an ordinary user, against the
// real berthd and Docker: create waits for the session to run and prints
// its address, then ps, info, logs, open, renew and delete.
func TestCLIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the CLI as another user")
	}
	docker := enginetest.Docker(t)
	img := enginetest.BuildContributedImage(t, enginetest.ContributedImage)
	bins := t.TempDir()
	berthd := goBuild(t, bins, "github.com/berth-edge/berth/daemon/cmd/berthd")
	berth := goBuild(t, bins, "github.com/berth-edge/berth/daemon/cmd/berth")

	dir := t.TempDir()
	sock := filepath.Join(dir, "berthd.sock")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	d := exec.Command(berthd, "--config", cfg, "--state-dir", dir, "--socket", sock, "--web-listen", "off")
	d.Stdout, d.Stderr = &log, &log
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	t.Cleanup(func() {
		_ = d.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = d.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("berthd log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("berthd never served its socket\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The test user reaches the socket as a member of the berth group
	// would.
	for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if !hasRoute(sock, "/api/v1/session") {
		t.Skip("this berthd serves no sessions API")
	}

	berthAs := func(timeout time.Duration, args ...string) (string, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, berth, args...)
		cmd.Env = []string{"BERTH_SOCKET=" + sock, "HOME=/nonexistent", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: e2eUID, Gid: e2eUID}}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}

	out, errOut, err := berthAs(3*time.Minute, "create", "contributed", img, "--name", "cli-e2e")
	if err != nil {
		t.Fatalf("berth create: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	id := lines[0]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = client.New(sock).Delete(ctx, id)
	})
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "Running") {
		t.Fatalf("berth create printed:\n%s\nstderr: %s", out, errOut)
	}

	out, _, err = berthAs(time.Minute, "ps")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "cli-e2e") || !strings.Contains(out, "Running") {
		t.Errorf("berth ps: %v\n%s", err, out)
	}
	out, _, err = berthAs(time.Minute, "ps", "--json")
	var ss []client.Session
	if err != nil || json.Unmarshal([]byte(out), &ss) != nil || len(ss) != 1 || ss[0].RunAsUID != "4242" {
		t.Errorf("berth ps --json: %v\n%s", err, out)
	}
	out, _, err = berthAs(time.Minute, "info", id)
	if err != nil || !strings.Contains(out, "contributed") || !strings.Contains(out, "uid 4242") {
		t.Errorf("berth info: %v\n%s", err, out)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		out, _, err = berthAs(time.Minute, "logs", id)
		if err == nil && strings.Contains(out, "testapp") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth logs: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Without a web listener there is no address to open.
	if _, errOut, err := berthAs(time.Minute, "open", "--no-browser", id); err == nil || !strings.Contains(errOut, "web listener") {
		t.Errorf("berth open: %v\n%s", err, errOut)
	}
	if out, errOut, err := berthAs(time.Minute, "renew", id); err != nil || !strings.Contains(out, "Renewed "+id) {
		t.Errorf("berth renew: %v\n%s%s", err, out, errOut)
	}
	if _, errOut, err := berthAs(time.Minute, "create", "contributed", "no-such-image:1"); err == nil || errOut == "" {
		t.Errorf("a missing image: %v, %q", err, errOut)
	}
	out, errOut, err = berthAs(time.Minute, "delete", id)
	if err != nil || strings.TrimSpace(out) != "Deleted "+id {
		t.Errorf("berth delete: %v\n%s%s", err, out, errOut)
	}
	if _, errOut, err := berthAs(time.Minute, "info", "nosuchid"); err == nil || !strings.HasPrefix(errOut, "berth: ") {
		t.Errorf("info of an unknown id: %v, %q", err, errOut)
	}

	// A private registry: root stores the credential with `berth registry
	// add`, the user's create pulls the image and shows the progress.
	reg := registrytest.Start(t, "puller", "s3cret-pw")
	remote := reg.Ref("e2e/contributed:1")
	reg.Push(t, docker, img, remote)
	rmctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err = docker.ImageRemove(rmctx, remote, image.RemoveOptions{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	add := exec.Command(berth, "registry", "add", "e2e", "--server", reg.Host(), "--username", "puller", "--password-stdin")
	add.Env = []string{"BERTH_SOCKET=" + sock}
	add.Stdin = strings.NewReader("s3cret-pw\n")
	if out, err := add.CombinedOutput(); err != nil || !strings.Contains(string(out), "Stored e2e") {
		t.Fatalf("berth registry add: %v\n%s", err, out)
	}
	list := exec.Command(berth, "registry", "list")
	list.Env = []string{"BERTH_SOCKET=" + sock}
	if out, err := list.CombinedOutput(); err != nil || !strings.Contains(string(out), reg.Host()) || strings.Contains(string(out), "s3cret") {
		t.Errorf("berth registry list: %v\n%s", err, out)
	}
	out, errOut, err = berthAs(3*time.Minute, "create", "contributed", remote, "--name", "cli-pull")
	if err != nil {
		t.Fatalf("berth create from the registry: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	pulled := strings.Fields(out)[0]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = client.New(sock).Delete(ctx, pulled)
	})
	if !strings.Contains(errOut, "Pulled "+remote) {
		t.Errorf("no pull progress on stderr:\n%s", errOut)
	}
	t.Logf("berth create from the registry, stderr:\n%s", errOut)
}

// hasRoute reports whether berthd serves path (it does not answer 404
// "no such route").
func hasRoute(sock, path string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var raw json.RawMessage
	err := client.New(sock).Get(ctx, path, &raw)
	ae, ok := err.(*client.APIError)
	return !(ok && ae.Status == 404 && strings.HasPrefix(ae.Message, "no such route"))
}
