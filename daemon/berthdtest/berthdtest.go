// Package berthdtest runs the real berthd binary for tests, in the spirit
// of net/http/httptest: it builds berthd once per test process, starts it
// with its state, socket and config in temporary places, waits until it
// serves, and stops it when the test ends, showing its log if the test
// failed. It also holds the small pieces the test harnesses of several
// packages need: a log buffer safe for concurrent writers and the module's
// root directory.
//
// It is for tests only. It lives outside daemon/internal so that every
// package of the module (gui/ and installer/ too) may import it; for the
// same reason it imports nothing from daemon/internal.
package berthdtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

// Package is the import path of berthd's main package.
const Package = "github.com/berth-edge/berth/daemon/cmd/berthd"

// StartTimeout is how long Start and WaitFor wait for berthd to serve;
// StopTimeout how long Stop waits after SIGTERM before it kills berthd.
const (
	StartTimeout = 30 * time.Second
	StopTimeout  = 20 * time.Second
)

// SyncBuffer is a bytes.Buffer that goroutines may write to concurrently,
// such as a child process's stdout and stderr, or a logger's handler.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RepoRoot is the module's root directory: the nearest directory above the
// working directory (a test's package directory) that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod in %s or above", wd)
		}
	}
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// Binary builds berthd once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berthd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir, binPath = dir, filepath.Join(dir, "berthd")
		if out, err := exec.Command("go", "build", "-o", binPath, Package).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build %s: %v\n%s", Package, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// RemoveBinary removes what Binary built; a TestMain calls it after m.Run.
func RemoveBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Config says how to run berthd. StateDir is required; the rest defaults.
type Config struct {
	// StateDir is berthd's --state-dir.
	StateDir string
	// Socket is the local API socket, default StateDir/berthd.sock. Unix
	// socket paths are short (108 bytes): a test with a long TempDir puts
	// it elsewhere.
	Socket string
	// ConfigFile is berthd's --config. Empty means StateDir/none.toml,
	// written empty (all defaults) unless it exists already.
	ConfigFile string
	// WebListen is --web-listen, default "off".
	WebListen string
	// Env is added to this process's environment.
	Env []string
	// Args are extra arguments, after the ones above.
	Args []string
	// Setpgid runs berthd in its own process group.
	Setpgid bool
}

// Daemon is one running berthd.
type Daemon struct {
	Cmd      *exec.Cmd
	StateDir string
	Socket   string
	// Log is berthd's stdout and stderr (at log level debug).
	Log *SyncBuffer

	t    testing.TB
	done chan error // holds Cmd.Wait's result once berthd has exited
}

// Start runs berthd as c says and waits until its socket answers; when the
// test ends it stops berthd and, if the test failed, logs berthd's log.
func Start(t testing.TB, c Config) *Daemon {
	t.Helper()
	if c.StateDir == "" {
		t.Fatal("berthdtest.Start: Config.StateDir is required")
	}
	if c.Socket == "" {
		c.Socket = filepath.Join(c.StateDir, "berthd.sock")
	}
	if c.ConfigFile == "" {
		// An explicit --config must exist; an empty file means all defaults.
		c.ConfigFile = filepath.Join(c.StateDir, "none.toml")
		if _, err := os.Stat(c.ConfigFile); err != nil {
			if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(c.ConfigFile, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c.WebListen == "" {
		c.WebListen = "off"
	}
	args := append([]string{"--config", c.ConfigFile, "--state-dir", c.StateDir, "--socket", c.Socket,
		"--web-listen", c.WebListen, "--log-level", "debug"}, c.Args...)
	cmd := exec.Command(Binary(t), args...)
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	if c.Setpgid {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	d := &Daemon{Cmd: cmd, StateDir: c.StateDir, Socket: c.Socket, Log: &SyncBuffer{}, t: t, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = d.Log, d.Log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("berthd log:\n%s", d.Log.String())
		}
	})
	d.WaitFor(t, "socket "+d.Socket, func() bool {
		c, err := net.Dial("unix", d.Socket)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return d
}

// WaitFor polls ready until it holds, failing the test if berthd exits
// first or StartTimeout passes; what names the awaited thing.
func (d *Daemon) WaitFor(t testing.TB, what string, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(StartTimeout)
	for !ready() {
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("berthd exited before serving: %v\n%s", err, d.Log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("berthd's %s never answered\n%s", what, d.Log.String())
		}
	}
}

// Stop sends SIGTERM and waits for berthd to exit, returning its exit
// error; after StopTimeout it kills berthd and fails the test. Stopping a
// stopped berthd returns nil.
func (d *Daemon) Stop() error {
	if d.Cmd.ProcessState != nil {
		return nil
	}
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(StopTimeout):
		_ = d.Cmd.Process.Kill()
		err := <-d.done
		d.done <- err
		d.t.Errorf("berthd did not stop within %s of SIGTERM", StopTimeout)
		return err
	}
}

// Kill sends SIGKILL, as a crash or the OOM killer would, and waits.
func (d *Daemon) Kill() {
	_ = d.Cmd.Process.Kill()
	err := <-d.done
	d.done <- err
}

// Client is a client of berthd's socket.
func (d *Daemon) Client() *client.Client { return client.New(d.Socket) }
