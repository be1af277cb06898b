package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

func TestIsForwarded(t *testing.T) {
	for path, want := range map[string]bool{
		"/api/v1/status":                 true,
		"/api":                           true,
		"/skaha/v1/session":              true,
		"/session/notebook/abcd1234/lab": true,
		"/":                              false,
		"/index.html":                    false,
		"/app.js":                        false,
		"/apikey.js":                     false,
		"/sessions.css":                  false,
		"/wails/runtime.js":              false,
		"/skahaless":                     false,
	} {
		if got := isForwarded(path); got != want {
			t.Errorf("isForwarded(%q) = %v, want %v", path, got, want)
		}
	}
}

// page serves handler over real HTTP, as the webview's asset server would
// call it, with "frontend" for everything not forwarded.
func page(t *testing.T, f *Forwarder) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "frontend "+r.URL.Path)
	})))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Origin", "wails://wails")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestForwardToBerthd: the page's requests reach a real berthd through its
// socket; everything else is the frontend.
func TestForwardToBerthd(t *testing.T) {
	d := startBerthd(t)
	var answered atomic.Int32
	srv := page(t, NewForwarder(d.Socket, discard(), func() { answered.Add(1) }))

	code, hdr, body := get(t, srv.URL+"/api/v1/status")
	var st client.Status
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(body), &st) != nil || st.Mode == "" {
		t.Fatalf("GET /api/v1/status: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	t.Logf("berthd %s, %s", st.Version, st.Mode)

	// berthd's own errors pass through untouched.
	code, _, body = get(t, srv.URL+"/api/v1/no-such-thing")
	var e client.Error
	if code != http.StatusNotFound || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Message, "no such route") {
		t.Errorf("GET /api/v1/no-such-thing: %d %s", code, body)
	}
	// The frontend's files are not forwarded.
	if code, _, body := get(t, srv.URL+"/app.js"); code != http.StatusOK || body != "frontend /app.js" {
		t.Errorf("GET /app.js: %d %q", code, body)
	}

	// The startup benchmark's hook: once, after the first apps answer.
	for range 3 {
		if code, _, body := get(t, srv.URL+"/api/v1/apps"); code != http.StatusOK || !strings.HasPrefix(body, "[") {
			t.Fatalf("GET /api/v1/apps: %d %s", code, body)
		}
	}
	if n := answered.Load(); n != 1 {
		t.Errorf("onApps called %d times, want 1", n)
	}
}

// TestForwardStreamsEvents: berthd's Server-Sent Events reach the page as
// they are written, not when the answer ends.
func TestForwardStreamsEvents(t *testing.T) {
	d := startBerthd(t)
	srv := page(t, NewForwarder(d.Socket, discard(), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/events", nil)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/v1/events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	// berthd writes a comment and the retry delay at once.
	select {
	case l := <-lines:
		if l != ": berthd events" {
			t.Fatalf("first line %q, want berthd's prelude", l)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the prelude took %s to arrive: the stream is buffered", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no prelude within 10s: the stream is buffered")
	}
	// Then events, as berthd publishes them (telemetry, periodically).
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended")
			}
			if strings.HasPrefix(l, "event: ") {
				t.Logf("first event %q after %s", l, time.Since(start).Round(time.Millisecond))
				return
			}
		case <-ctx.Done():
			t.Fatal("no event within 90s")
		}
	}
}

// TestForwardBerthdDown: no berthd is a JSON 502 saying how to start it.
func TestForwardBerthdDown(t *testing.T) {
	dir := t.TempDir()
	// A socket file nobody listens on (berthd was killed) and no file at
	// all (berthd never started) say the same.
	dead := filepath.Join(dir, "dead.sock")
	l, err := net.Listen("unix", dead)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	for _, sock := range []string{filepath.Join(dir, "missing.sock"), dead} {
		srv := page(t, NewForwarder(sock, discard(), nil))
		for _, path := range []string{"/api/v1/status", "/api/v1/events", "/skaha/v1/session", "/session/notebook/x/lab"} {
			code, hdr, body := get(t, srv.URL+path)
			var e client.Error
			if code != http.StatusBadGateway || hdr.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &e) != nil {
				t.Errorf("%s via %s: %d %s %q", path, filepath.Base(sock), code, hdr.Get("Content-Type"), body)
				continue
			}
			if e.Status != http.StatusBadGateway || e.Message != "berthd is not running: start it with systemctl start berthd" {
				t.Errorf("%s via %s: %+v", path, filepath.Base(sock), e)
			}
		}
	}
	if os.Geteuid() != 0 {
		// A socket this user may not open: the berth group hint.
		sock := filepath.Join(dir, "private.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := os.Chmod(sock, 0o000); err != nil {
			t.Fatal(err)
		}
		_, _, body := get(t, page(t, NewForwarder(sock, discard(), nil)).URL+"/api/v1/status")
		if !strings.Contains(body, "berth group") {
			t.Errorf("permission denied: %s", body)
		}
	}
}

// TestForwardWebSocket: /session/ upgrades (Jupyter's kernels, CARTA)
// pass through both ways. berthd's session proxy needs a running session
// to upgrade, so the socket here is served by a small echo server that
// speaks the upgrade handshake.
func TestForwardWebSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "echo.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	echo := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.URL.Path != "/session/notebook/abcd/api/kernels" {
			http.Error(w, "want an upgrade of the kernel path", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		_, _ = io.Copy(conn, rw) // echo
	})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = echo.Serve(l) }()
	defer wg.Wait()
	defer echo.Close()

	srv := page(t, NewForwarder(sock, discard(), nil))
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET /session/notebook/abcd/api/kernels HTTP/1.1\r\nHost: wails\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade: %s %s", resp.Status, b)
	}
	for _, msg := range []string{"ping", "kernel message"} {
		_, _ = io.WriteString(c, msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, buf, err)
		}
	}
}

// BenchmarkForwardApps compares GET /api/v1/apps straight to berthd's
// socket with the same request through the Forwarder (what the window's
// page does).
func BenchmarkForwardApps(b *testing.B) {
	d := startBerthd(b)
	srv := httptest.NewServer(NewForwarder(d.Socket, discard(), nil))
	defer srv.Close()
	direct := newBerthd(d.Socket).http
	do := func(c *http.Client, url string) {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s", url, resp.Status)
		}
	}
	var viaSocket, viaForwarder time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		do(direct, "http://berthd/api/v1/apps")
		t1 := time.Now()
		do(http.DefaultClient, srv.URL+"/api/v1/apps")
		viaSocket += t1.Sub(t0)
		viaForwarder += time.Since(t1)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(viaSocket.Microseconds())/float64(b.N), "µs-socket")
	b.ReportMetric(float64(viaForwarder.Microseconds())/float64(b.N), "µs-forwarded")
}
