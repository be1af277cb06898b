package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	bclient "github.com/berth-edge/berth/daemon/client"
)

// The harness runs the real berthd binary, as a user or systemd would.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// berthdBinary builds berthd once per test process.
func berthdBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berthd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "berthd")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemonProc is one running berthd.
type daemonProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	dir    string
	socket string
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

// startDaemon runs berthd with its state in dir and the given extra
// arguments and environment, and waits until its socket answers.
func startDaemon(t testing.TB, dir string, env []string, args ...string) *daemonProc {
	t.Helper()
	socket := filepath.Join(dir, "berthd.sock")
	all := append([]string{"--config", filepath.Join(dir, "none.toml"), "--state-dir", dir, "--socket", socket, "--web-listen", "off", "--log-level", "debug"}, args...)
	// An explicit --config must exist; an empty file means all defaults.
	if _, err := os.Stat(filepath.Join(dir, "none.toml")); err != nil {
		if err := os.WriteFile(filepath.Join(dir, "none.toml"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(berthdBinary(t), all...)
	cmd.Env = append(os.Environ(), env...)
	d := &daemonProc{t: t, cmd: cmd, dir: dir, socket: socket, log: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("berthd log:\n%s", d.log.String())
		}
	})
	d.waitSocket()
	return d
}

func (d *daemonProc) waitSocket() {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("unix", d.socket)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-d.done:
			d.done <- err
			d.t.Fatalf("berthd exited before serving: %v\n%s", err, d.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.t.Fatalf("berthd socket %s never answered\n%s", d.socket, d.log.String())
}

// stop sends SIGTERM and waits; it returns the exit error.
func (d *daemonProc) stop() error {
	if d.cmd.ProcessState != nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		err := <-d.done
		d.done <- err
		d.t.Errorf("berthd did not stop within 20s of SIGTERM")
		return err
	}
}

// kill sends SIGKILL, as a crash or the OOM killer would.
func (d *daemonProc) kill() {
	_ = d.cmd.Process.Kill()
	err := <-d.done
	d.done <- err
}

func (d *daemonProc) client() *bclient.Client { return bclient.New(d.socket) }

// bridgeGateway is the address containers reach the host at.
func bridgeGateway(t testing.TB, cli *client.Client) string {
	t.Helper()
	n, err := cli.NetworkInspect(context.Background(), "bridge", network.InspectOptions{})
	if err != nil {
		t.Skipf("docker bridge network not available: %v", err)
	}
	for _, c := range n.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway
		}
	}
	// The default bridge often lists no gateway: it is the bridge
	// interface's own address.
	name := n.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	if iface, err := net.InterfaceByName(name); err == nil {
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	t.Skipf("docker bridge network has no IPv4 gateway (interface %s)", name)
	return ""
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}
