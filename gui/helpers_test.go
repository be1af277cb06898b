package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func getenv(k string) string { return os.Getenv(k) }

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func lookTool(name string) (string, error) { return exec.LookPath(name) }

// runTool runs a command with a one-minute deadline.
func runTool(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// repoRoot is the module root (gui/..).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

// The real berthd, built once per test binary, as
// daemon/cmd/berthd/harness_test.go runs it.
var (
	berthdOnce sync.Once
	berthdPath string
	berthdErr  error
	binDir     string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func binaries(t testing.TB) string {
	t.Helper()
	if binDir == "" {
		d, err := os.MkdirTemp("", "berth-desktop-test-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
	}
	return binDir
}

func berthdBinary(t testing.TB) string {
	t.Helper()
	dir := binaries(t)
	berthdOnce.Do(func() {
		berthdPath = filepath.Join(dir, "berthd")
		cmd := exec.Command("go", "build", "-o", berthdPath, "./daemon/cmd/berthd")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			berthdErr = fmt.Errorf("go build ./daemon/cmd/berthd: %v\n%s", err, out)
		}
	})
	if berthdErr != nil {
		t.Fatal(berthdErr)
	}
	return berthdPath
}

// berthdProc is one running berthd.
type berthdProc struct {
	socket string
	cmd    *exec.Cmd
	log    *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBerthd runs a real berthd with its state in a temporary directory,
// its socket there, and no web listener; it needs Docker.
func startBerthd(t testing.TB) *berthdProc {
	t.Helper()
	if _, err := os.Stat("/var/run/docker.sock"); err != nil && os.Getenv("DOCKER_HOST") == "" {
		t.Skip("SKIP: no Docker engine (make docker starts one): berthd needs it")
	}
	bin := berthdBinary(t)
	dir := t.TempDir()
	// Unix socket paths are short: keep the socket near the root.
	sockDir, err := os.MkdirTemp("", "bd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cfg := filepath.Join(dir, "none.toml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &berthdProc{socket: filepath.Join(sockDir, "berthd.sock"), log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--config", cfg, "--state-dir", filepath.Join(dir, "state"), "--socket", p.socket,
		"--web-listen", "off", "--log-level", "debug")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("berthd log:\n%s", p.log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", p.socket); err == nil {
			c.Close()
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("berthd exited before serving: %v\n%s", err, p.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("berthd's socket never answered\n%s", p.log.String())
		}
	}
}

func (p *berthdProc) stop(t testing.TB) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		t.Errorf("berthd did not stop within 20s of SIGTERM")
	}
}
