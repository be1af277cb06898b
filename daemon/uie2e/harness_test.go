// Package uie2e drives berth's web UI in a real headless Chromium against a
// real berthd (the built binary, a temporary state directory, the real
// Docker engine) and, for the Box view, nuvlatest. It holds tests only.
//
// The tests skip when Chromium or Docker is missing, and with -short.
// Screenshots of each view go to build/test-artifacts/; with
// -update-screenshots those the README shows are also copied to
// docs/screenshots/.
package uie2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/berth-edge/berth/daemon/berthdtest"
	"github.com/berth-edge/berth/daemon/client"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "also copy the screenshots the README shows to docs/screenshots/")

// docShots are the screenshots the README shows.
var docShots = map[string]bool{"apps": true, "launch": true, "box": true, "telemetry": true, "logs": true}

// TestMain removes the berthd binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	berthdtest.RemoveBinary()
	os.Exit(code)
}

// berthd is one running daemon with its web listener.
type berthd struct {
	*berthdtest.Daemon
	base  string // http://127.0.0.1:PORT
	token string
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startBerthd runs berthd with config (TOML, without [web]) and waits for
// its web listener and token.
func startBerthd(t testing.TB, config string) *berthd {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &berthd{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	d.Daemon = berthdtest.Start(t, berthdtest.Config{StateDir: dir, ConfigFile: cfg, WebListen: fmt.Sprintf("127.0.0.1:%d", port)})
	d.WaitFor(t, "web listener", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "web-token"))
		if c, derr := net.Dial("tcp", strings.TrimPrefix(d.base, "http://")); derr == nil && err == nil && len(bytes.TrimSpace(b)) > 0 {
			c.Close()
			d.token = string(bytes.TrimSpace(b))
			return true
		}
		return false
	})
	return d
}

// has reports whether berthd serves path (GET) on its socket: features
// that have not landed answer 404 "no such route".
func (d *berthd) has(path string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var raw []byte
	err := d.Client().Get(ctx, path, (*jsonRaw)(&raw))
	var ae *client.APIError
	return !(errors.As(err, &ae) && ae.Status == 404 && strings.HasPrefix(ae.Message, "no such route"))
}

// jsonRaw takes any JSON answer.
type jsonRaw []byte

func (j *jsonRaw) UnmarshalJSON(b []byte) error { *j = append((*j)[:0], b...); return nil }

// browser starts a headless Chromium, skipping the test without one.
func browser(t testing.TB) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium: apt-get install chromium (build/scripts/ensure-test-deps.sh does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI has no user namespaces for the sandbox
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-GB"),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Skipf("chromium does not start: %v", err)
	}
	return ctx
}

// page is one browser tab on berthd's UI.
type page struct {
	t   testing.TB
	ctx context.Context
	// errs collects the page's uncaught exceptions.
	mu   sync.Mutex
	errs []string
}

// open loads the UI with the token (which becomes a cookie) at view.
func open(t testing.TB, ctx context.Context, base, token, view string) *page {
	t.Helper()
	p := &page{t: t, ctx: ctx}
	_ = chromedp.Listen(ctx, func(ev any) {
		var d *runtime.ExceptionDetails
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d = e.ExceptionDetails
		case runtime.EventExceptionThrown:
			d = e.ExceptionDetails
		}
		if d != nil {
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			p.mu.Lock()
			p.errs = append(p.errs, msg)
			p.mu.Unlock()
		}
	})
	p.run(chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+"/?token="+token+"#"+view))
	p.run(chromedp.WaitVisible(chromedp.CSS("#view-" + view)))
	return p
}

// run runs actions with a deadline, failing the test on error.
func (p *page) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\npage errors: %v\nmain: %.3000s", err, p.errors(), p.mainHTML())
	}
}

// mainHTML is the page's <main>, for failure messages.
func (p *page) mainHTML() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").outerHTML`))
	return html
}

func (p *page) errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// eval evaluates a JavaScript expression, awaiting a promise.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v\npage errors: %v", expr, err, p.errors())
	}
	return v
}

// waitJS polls a JavaScript condition until it is true.
func (p *page) waitJS(what, cond string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %s waiting for %s (%v)\npage errors: %v\nmain: %.4000s", timeout, what, err, p.errors(), p.mainHTML())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// text is an element's textContent.
func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, "(document.querySelector("+jsString(sel)+")||{}).textContent||''")
}

// screenshot saves the window as build/test-artifacts/<name>.png (and in
// docs/screenshots/ with -update-screenshots).
func (p *page) screenshot(name string) {
	p.t.Helper()
	p.waitJS("the toasts gone", `document.getElementById("toasts").childElementCount === 0`, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // let transitions settle
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	root := berthdtest.RepoRoot(p.t)
	dirs := []string{filepath.Join(root, "build", "test-artifacts")}
	if *updateScreenshots && docShots[name] {
		dirs = append(dirs, filepath.Join(root, "docs", "screenshots"))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}

// key presses a key on the focused element.
func (p *page) key(k string) { p.t.Helper(); p.run(chromedp.KeyEvent(k)) }

func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
