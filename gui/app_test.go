package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

// fakeDesktop records what the app asked of the window system.
type fakeDesktop struct {
	mu     sync.Mutex
	menus  [][]*menuNode
	opened []string
	errors []string
	infos  []string
	quits  int
}

func (f *fakeDesktop) SetMenu(n []*menuNode) {
	f.mu.Lock()
	f.menus = append(f.menus, n)
	f.mu.Unlock()
}
func (f *fakeDesktop) OpenURL(u string) { f.mu.Lock(); f.opened = append(f.opened, u); f.mu.Unlock() }
func (f *fakeDesktop) Info(title, m string) {
	f.mu.Lock()
	f.infos = append(f.infos, title+": "+m)
	f.mu.Unlock()
}
func (f *fakeDesktop) Error(title, m string) {
	f.mu.Lock()
	f.errors = append(f.errors, title+": "+m)
	f.mu.Unlock()
}
func (f *fakeDesktop) Focus() {}
func (f *fakeDesktop) Quit()  { f.mu.Lock(); f.quits++; f.mu.Unlock() }

func (f *fakeDesktop) snapshot() (menus int, errs, infos []string, quits int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.menus), append([]string(nil), f.errors...), append([]string(nil), f.infos...), f.quits
}

// TestAppWithBerthd runs the app's loops against a real berthd: the menu
// is built from its answers (and dumped), About shows its version, a launch
// reaches POST /api/v1/session and berthd's answer is what the user sees,
// and the quit hook fires.
func TestAppWithBerthd(t *testing.T) {
	d := startBerthd(t)
	dump := filepath.Join(t.TempDir(), "menu.json")
	a := newApp(discard(), newBerthd(d.Socket), hooks{MenuDump: dump, QuitAfter: 1500 * time.Millisecond}, "0.0.0-test", time.Now())
	fd := &fakeDesktop{}
	a.start(fd)
	defer a.stop()

	eventually(t, 20*time.Second, "the first menu", func() bool { n, _, _, _ := fd.snapshot(); return n > 0 })
	var labels []menuLabel
	if !readJSON(dump, &labels) || len(labels) != 4 || labels[2].Label != menuApps {
		t.Fatalf("menu dump: %+v", labels)
	}

	a.about()
	eventually(t, 20*time.Second, "the About dialog", func() bool { _, _, infos, _ := fd.snapshot(); return len(infos) > 0 })
	_, _, infos, _ := fd.snapshot()
	if !strings.Contains(infos[0], "berthd: ") || strings.Contains(infos[0], "not reachable") || !strings.Contains(infos[0], "Berth Desktop 0.0.0-test") {
		t.Errorf("About: %s", infos[0])
	}

	// A launch of an image berthd cannot run: the user sees berthd's
	// own message, whatever the session API says.
	a.launchItem(client.MenuItem{Label: "nothing:1", Image: "localhost/berth-desktop-test/nothing:1", Types: []string{"notebook"}}, "bogus-type")
	eventually(t, 30*time.Second, "the launch's error dialog", func() bool { _, errs, _, _ := fd.snapshot(); return len(errs) > 0 })
	_, errs, _, _ := fd.snapshot()
	if !strings.HasPrefix(errs[0], "Cannot launch nothing:1: ") || strings.Contains(errs[0], "berthd answered") {
		t.Errorf("launch error dialog: %q; want berthd's JSON message", errs[0])
	}
	t.Logf("berthd said: %s", errs[0])
	if !strings.Contains(d.Log.String(), "method=POST path=/api/v1/session") {
		t.Error("berthd's log shows no POST /api/v1/session")
	}

	eventually(t, 10*time.Second, "the quit hook", func() bool { _, _, _, q := fd.snapshot(); return q == 1 })
}

// TestAppBerthdDown: with no berthd the menu says how to start it.
func TestAppBerthdDown(t *testing.T) {
	a := newApp(discard(), newBerthd(filepath.Join(t.TempDir(), "none.sock")), hooks{}, "0.0.0-test", time.Now())
	fd := &fakeDesktop{}
	a.start(fd)
	defer a.stop()
	eventually(t, 10*time.Second, "the first menu", func() bool { n, _, _, _ := fd.snapshot(); return n > 0 })
	fd.mu.Lock()
	nodes := fd.menus[0]
	fd.mu.Unlock()
	want := "berthd is not running: start it with systemctl start berthd"
	if n := findNode(nodes, menuSoftware, want); n == nil || !n.Disabled {
		t.Errorf("Astro Software: %+v", menuLabels(findNode(nodes, menuSoftware).Children))
	}
	if n := findNode(nodes, menuApps, want); n == nil {
		t.Errorf("Apps: %+v", menuLabels(findNode(nodes, menuApps).Children))
	}
	// Painted records the first apps paint once.
	timing := filepath.Join(t.TempDir(), "t.json")
	a.hooks.Timing = timing
	a.Painted("logs")
	if _, err := os.Stat(timing); err == nil {
		t.Error("Painted for another view recorded a time")
	}
	a.Painted("apps")
	var tm startupTiming
	if !readJSON(timing, &tm) || tm.PaintedMS <= 0 {
		t.Errorf("timing after Painted(apps): %+v", tm)
	}
	first := tm.PaintedMS
	time.Sleep(10 * time.Millisecond)
	a.Painted("apps")
	readJSON(timing, &tm)
	if tm.PaintedMS != first {
		t.Errorf("a second Painted(apps) changed the time: %v -> %v", first, tm.PaintedMS)
	}
}
