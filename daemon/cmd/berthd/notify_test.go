package main

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/internal/nuvla/nuvlatest"
)

// notifySocket is what systemd listens on for sd_notify datagrams.
type notifySocket struct {
	conn *net.UnixConn
	path string
	mu   sync.Mutex
	msgs []string
	at   []time.Time
	done chan struct{}
}

func listenNotify(t testing.TB) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{conn: conn, path: path, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		buf := make([]byte, 4096)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.at = append(n.at, time.Now())
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-n.done })
	return n
}

func (n *notifySocket) messages() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// first returns when the first message containing s arrived.
func (n *notifySocket) first(s string) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, m := range n.msgs {
		if strings.Contains(m, s) {
			return n.at[i], true
		}
	}
	return time.Time{}, false
}

func (n *notifySocket) count(s string) int {
	c := 0
	for _, m := range n.messages() {
		if strings.Contains(m, s) {
			c++
		}
	}
	return c
}

// berthd speaks the systemd notify protocol: READY=1 once serving, with a
// STATUS line, WATCHDOG=1 at half the watchdog interval, STOPPING=1 on
// SIGTERM.
func TestSystemdNotify(t *testing.T) {
	n := listenNotify(t)
	d := startDaemon(t, t.TempDir(), []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=200000"})
	eventually(t, 10*time.Second, "READY=1 and three watchdog pings", func() (bool, string) {
		return n.count("READY=1") == 1 && n.count("WATCHDOG=1") >= 3, strings.Join(n.messages(), " | ")
	})
	ready := ""
	for _, m := range n.messages() {
		if strings.Contains(m, "READY=1") {
			ready = m
		}
	}
	if !strings.Contains(ready, "STATUS=standalone") {
		t.Errorf("READY message %q carries no STATUS=standalone", ready)
	}
	// READY comes only once the socket serves: the socket answered before
	// startDaemon returned, and READY was not sent before the store opened.
	msgs := n.messages()
	if i := indexOf(msgs, "READY=1"); i < 0 || indexOf(msgs, "STATUS=opening state file") > i {
		t.Errorf("READY=1 before start-up finished: %q", msgs)
	}
	if err := d.Stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if n.count("STOPPING=1") != 1 {
		t.Fatalf("no STOPPING=1 after SIGTERM: %q", n.messages())
	}
}

// A hung main loop stops the watchdog pings, so systemd restarts berthd.
func TestWatchdogStopsWhenLoopHangs(t *testing.T) {
	n := listenNotify(t)
	startDaemon(t, t.TempDir(), []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=100000", "BERTH_TEST_HANG=1"})
	eventually(t, 10*time.Second, "READY=1", func() (bool, string) { return n.count("READY=1") == 1, "" })
	time.Sleep(500 * time.Millisecond)
	if c := n.count("WATCHDOG=1"); c != 0 {
		t.Fatalf("a hung loop sent %d watchdog pings", c)
	}
}

// In Nuvla mode every state change reaches systemd as STATUS=.
func TestSystemdStatusFollowsTheLink(t *testing.T) {
	e := newE2E(t)
	n := listenNotify(t)
	e.env = append(e.env, "NOTIFY_SOCKET="+n.path)
	e.start()
	e.waitOnline()
	eventually(t, 10*time.Second, "STATUS=online", func() (bool, string) {
		return n.count("STATUS=online") > 0, strings.Join(n.messages(), " | ")
	})
	for _, want := range []string{"STATUS=activating", "STATUS=commissioning"} {
		if n.count(want) == 0 {
			t.Errorf("no %s in %q", want, n.messages())
		}
	}
	// The control plane goes away: the status says offline, and says why.
	e.cp.SetFault(nuvlatest.Fault{Status: 503})
	eventually(t, 15*time.Second, "STATUS=offline", func() (bool, string) {
		return n.count("STATUS=offline") > 0, strings.Join(n.messages(), " | ")
	})
	e.cp.SetFault(nuvlatest.Fault{})
	before := n.count("STATUS=online")
	eventually(t, 30*time.Second, "back online", func() (bool, string) {
		return n.count("STATUS=online") > before, ""
	})
}

func indexOf(msgs []string, s string) int {
	for i, m := range msgs {
		if strings.Contains(m, s) {
			return i
		}
	}
	return -1
}
