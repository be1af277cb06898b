package main

// The real berth-desktop binary under Xvfb, against a real berthd: the
// window maps, the menu holds the catalog, a second launch hands over to
// the first, the quit hook ends it; and the startup benchmark.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	dockerclient "github.com/docker/docker/client"

	"github.com/berth-edge/berth/daemon/berthdtest"
)

// needDesktop skips unless berth-desktop can be built and shown here.
func needDesktop(t testing.TB) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"Xvfb", "xwininfo", "xwd", "gcc", "pkg-config"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Skipf("SKIP: %s not installed (make test-deps installs them: xvfb, x11-utils, x11-apps, gcc, pkg-config)", strings.Join(missing, ", "))
	}
	if out, err := exec.Command("pkg-config", "--exists", "--print-errors", "gtk+-3.0", "webkit2gtk-4.1").CombinedOutput(); err != nil {
		t.Skipf("SKIP: the GTK 3 / WebKitGTK 4.1 headers are missing (apt-get install libgtk-3-dev libwebkit2gtk-4.1-dev): %s", out)
	}
}

var (
	desktopOnce sync.Once
	desktopPath string
	desktopErr  error
)

// desktopBinary builds berth-desktop as `make desktop` does, once.
func desktopBinary(t testing.TB) string {
	t.Helper()
	dir := binaries(t)
	desktopOnce.Do(func() {
		desktopPath = filepath.Join(dir, "berth-desktop")
		cmd := exec.Command("go", "build", "-tags", "desktop,production,webkit2_41", "-ldflags", "-X main.version=0.0.0-test", "-o", desktopPath, "./gui")
		cmd.Dir = berthdtest.RepoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			desktopErr = fmt.Errorf("go build -tags desktop,production,webkit2_41 ./gui: %v\n%s", err, out)
		}
	})
	if desktopErr != nil {
		t.Fatal(desktopErr)
	}
	return desktopPath
}

// startXvfb runs a private X server and returns its DISPLAY. The display
// number is picked at random far above the usual ones (:0, :1, :99), so
// that other test suites starting their own Xvfb on this machine do not
// meet this one.
func startXvfb(t testing.TB) string {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		n := 300 + mathrand.IntN(600)
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		cmd := exec.Command("Xvfb", fmt.Sprintf(":%d", n), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-ac")
		log := &berthdtest.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		display := fmt.Sprintf(":%d", n)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if exec.Command("xwininfo", "-root", "-display", display).Run() == nil {
				t.Cleanup(func() {
					select {
					case <-done:
						t.Logf("Xvfb %s had exited before the end of the test:\n%s", display, log.String())
						return
					default:
					}
					_ = cmd.Process.Signal(syscall.SIGTERM)
					select {
					case <-done:
					case <-time.After(10 * time.Second):
						_ = cmd.Process.Kill()
						<-done
					}
				})
				return display
			}
			select {
			case <-done:
				// Lost a race for the number: try another one.
				t.Logf("Xvfb %s: %s", display, strings.TrimSpace(log.String()))
			case <-time.After(100 * time.Millisecond):
				if time.Now().Before(deadline) {
					continue
				}
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("Xvfb %s did not answer within 20s:\n%s", display, log.String())
			}
			break
		}
	}
	t.Fatal("no free X display number for Xvfb")
	return ""
}

// labelledImage builds a tiny local image FROM scratch tagged ref with
// the berth.types label, and removes it when the test ends.
func labelledImage(t testing.TB, ref, types string) {
	t.Helper()
	cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Skipf("SKIP: no Docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range []struct{ name, data string }{
		{"Dockerfile", "FROM scratch\nCOPY README /README\n"},
		{"README", "berth-desktop test image\n"},
	} {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(f.data))
	}
	_ = tw.Close()
	resp, err := cli.ImageBuild(ctx, &tb, build.ImageBuildOptions{
		Tags: []string{ref}, Remove: true, ForceRemove: true,
		Labels: map[string]string{"berth.types": types, "berth.test": "true"},
	})
	if err != nil {
		t.Fatalf("docker build %s: %v", ref, err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("docker build %s: %s", ref, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	})
}

// desktopProc is one running berth-desktop.
type desktopProc struct {
	cmd  *exec.Cmd
	log  *berthdtest.SyncBuffer
	done chan error
}

func launchDesktop(t testing.TB, bin string, env ...string) *desktopProc {
	t.Helper()
	p := &desktopProc{log: &berthdtest.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--verbose")
	p.cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "LANG=C.UTF-8"}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			err := <-p.done
			p.done <- err
		}
	})
	return p
}

// wait waits for the process to exit and returns its error.
func (p *desktopProc) wait(timeout time.Duration) (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// windows lists the X server's windows.
func windows(display string) string {
	out, _ := exec.Command("xwininfo", "-root", "-tree", "-display", display).CombinedOutput()
	return string(out)
}

// screenshot writes the screen as a PNG into build/test-artifacts.
func screenshot(t testing.TB, display, name string) string {
	t.Helper()
	out, err := exec.Command("xwd", "-root", "-silent", "-display", display).Output()
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	img, err := decodeXWD(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(berthdtest.RepoRoot(t), "build", "test-artifacts")
	mkdir(t.(*testing.T), dir)
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// readJSON reads a hook file; false while it does not exist yet.
func readJSON(path string, v any) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sessionBus starts a private D-Bus session bus (for the single-instance
// lock) and returns its address, or "" without dbus-daemon.
func sessionBus(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		return ""
	}
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon gave no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

func TestDesktopUnderXvfb(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: -short: builds berth-desktop and runs it under Xvfb")
	}
	needDesktop(t)
	// The catalog lists local images labelled berth.types; build one
	// before berthd starts so its first catalog holds it.
	labelledImage(t, "localhost/astro/topcat:4.8", "desktop-app,notebook")
	d := startBerthd(t)
	bin := desktopBinary(t)
	display := startXvfb(t)
	bus := sessionBus(t)

	dir := t.TempDir()
	dump, timing := filepath.Join(dir, "menu.json"), filepath.Join(dir, "timing.json")
	env := []string{"DISPLAY=" + display, "BERTH_SOCKET=" + d.Socket, "BERTH_DESKTOP_MENU_DUMP=" + dump,
		"BERTH_DESKTOP_TIMING=" + timing, "BERTH_DESKTOP_QUIT_AFTER=20s", "XDG_SESSION_TYPE=x11"}
	if bus != "" {
		env = append(env, "DBUS_SESSION_BUS_ADDRESS="+bus)
	}
	start := time.Now()
	p := launchDesktop(t, bin, env...)
	defer func() {
		if t.Failed() {
			t.Logf("berth-desktop log:\n%s", p.log.String())
		}
	}()

	// The window maps, titled Berth.
	eventually(t, 60*time.Second, `a window named "Berth"`, func() bool { return strings.Contains(windows(display), `"Berth": ("berth-desktop"`) })
	t.Logf("window mapped %s after launch", time.Since(start).Round(time.Millisecond))

	// The menu bar holds berthd's data.
	var labels []menuLabel
	eventually(t, 60*time.Second, "the menu built from berthd's answers", func() bool {
		labels = nil
		return readJSON(dump, &labels) && len(labels) == 4 && len(labels[1].Items) > 0 && labels[1].Items[0].Label != "Loading…"
	})
	var top []string
	for _, l := range labels {
		top = append(top, l.Label)
	}
	if strings.Join(top, ",") != "Berth,Astro Software,Apps,Help" {
		t.Errorf("menu bar %v", top)
	}
	t.Run("catalog menu", func(t *testing.T) {
		first := labels[1].Items[0]
		if strings.Contains(first.Label, "no such route") {
			t.Skipf("SKIP: this berthd has no catalog yet (GET /api/v1/menu: %s)", first.Label)
		}
		var found *menuLabel
		for i := range labels[1].Items {
			if labels[1].Items[i].Label == "astro" {
				for j := range labels[1].Items[i].Items {
					if it := &labels[1].Items[i].Items[j]; it.Label == "topcat:4.8" {
						found = it
					}
				}
			}
		}
		if found == nil {
			b, _ := json.MarshalIndent(labels[1], "", " ")
			t.Fatalf("no Astro Software → astro → topcat:4.8 in the menu:\n%s", b)
		}
		var types []string
		for _, it := range found.Items {
			types = append(types, it.Label)
		}
		if strings.Join(types, ",") != "notebook,desktop-app" {
			t.Errorf("topcat:4.8 offers %v, want notebook and desktop-app", types)
		}
	})

	// The page got its data through the forwarder.
	var tm startupTiming
	eventually(t, 60*time.Second, "the page's first GET /api/v1/apps", func() bool { return readJSON(timing, &tm) && tm.AppsAnsweredMS > 0 })
	time.Sleep(2 * time.Second) // let the page paint
	if readJSON(timing, &tm); tm.PaintedMS > 0 {
		t.Logf("launch → apps answered %.0f ms, apps painted %.0f ms, menu %.0f ms", tm.AppsAnsweredMS, tm.PaintedMS, tm.MenuMS)
	} else {
		t.Logf("launch → apps answered %.0f ms, menu %.0f ms (the page did not call App.Painted)", tm.AppsAnsweredMS, tm.MenuMS)
	}
	shot := screenshot(t, display, "berth-desktop.png")
	t.Logf("screenshot: %s", shot)

	// A second launch hands over to the first (D-Bus single-instance lock)
	// and exits.
	if bus == "" {
		t.Log("no dbus-daemon: the single-instance check is skipped")
	} else {
		second := launchDesktop(t, bin, env...)
		err, exited := second.wait(30 * time.Second)
		if !exited {
			t.Errorf("a second berth-desktop kept running:\n%s", second.log.String())
		} else if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("the second berth-desktop exited with %v, want status 1 (handed over)", err)
		}
		eventually(t, 10*time.Second, "the first instance told of the second", func() bool {
			return strings.Contains(p.log.String(), "started again")
		})
	}

	// BERTH_DESKTOP_QUIT_AFTER ends it cleanly.
	err, exited := p.wait(60 * time.Second)
	if !exited {
		t.Fatal("berth-desktop did not quit after BERTH_DESKTOP_QUIT_AFTER")
	}
	if err != nil {
		t.Errorf("berth-desktop exited with %v", err)
	}
	if strings.Contains(windows(display), `"Berth"`) {
		t.Error("the window is still there after quitting")
	}
}

// BenchmarkStartupToAppsPainted measures launch → the first apps list
// painted (the frontend's App.Painted('apps') call), launch → the first
// GET /api/v1/apps answered, and launch → the window mapped, under Xvfb
// against a real berthd.
func BenchmarkStartupToAppsPainted(b *testing.B) {
	needDesktop(b)
	d := startBerthd(b)
	bin := desktopBinary(b)
	display := startXvfb(b)
	var painted, answered, mapped []float64
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		timing := filepath.Join(dir, "timing.json")
		start := time.Now()
		p := launchDesktop(b, bin, "DISPLAY="+display, "BERTH_SOCKET="+d.Socket, "BERTH_DESKTOP_TIMING="+timing, "BERTH_DESKTOP_QUIT_AFTER=1s")
		var tm startupTiming
		win := 0.0
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if win == 0 && strings.Contains(windows(display), `"Berth": ("berth-desktop"`) {
				win = ms(time.Since(start))
			}
			if readJSON(timing, &tm) && tm.PaintedMS > 0 && win > 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if tm.AppsAnsweredMS == 0 {
			b.Fatalf("no apps answer within 60s (X server: %.200s):\n%s", windows(display), p.log.String())
		}
		if err, ok := p.wait(60 * time.Second); !ok || err != nil {
			b.Fatalf("berth-desktop did not quit cleanly (%v):\n%s", err, p.log.String())
		}
		answered, mapped = append(answered, tm.AppsAnsweredMS), append(mapped, win)
		if tm.PaintedMS > 0 {
			painted = append(painted, tm.PaintedMS)
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(median(mapped), "ms-window-mapped")
	b.ReportMetric(median(answered), "ms-apps-answered")
	if len(painted) > 0 {
		b.ReportMetric(median(painted), "ms-apps-painted")
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
