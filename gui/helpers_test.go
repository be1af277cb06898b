package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/berthdtest"
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

// binDir holds the binaries the tests build (berth-desktop); berthd
// itself is built by berthdtest, as daemon/cmd/berthd's tests run it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	berthdtest.RemoveBinary()
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

// startBerthd runs a real berthd with its state in a temporary directory,
// its socket in a short one, and no web listener; it needs Docker.
func startBerthd(t testing.TB) *berthdtest.Daemon {
	t.Helper()
	if _, err := os.Stat("/var/run/docker.sock"); err != nil && os.Getenv("DOCKER_HOST") == "" {
		t.Skip("SKIP: no Docker engine (make docker starts one): berthd needs it")
	}
	// Unix socket paths are short: keep the socket near the root.
	sockDir, err := os.MkdirTemp("", "bd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	return berthdtest.Start(t, berthdtest.Config{StateDir: t.TempDir(), Socket: filepath.Join(sockDir, "berthd.sock"), Setpgid: true})
}
