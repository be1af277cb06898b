package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/berthdtest"
	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/caller"
)

// fakeBackend stands in for berthd's agent.
type fakeBackend struct {
	status client.Status
	apps   []client.App
	err    error
}

func (f *fakeBackend) Status(context.Context) client.Status { return f.status }
func (f *fakeBackend) Apps(context.Context) ([]client.App, error) {
	return f.apps, f.err
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func sampleBackend() *fakeBackend {
	return &fakeBackend{
		status: client.Status{
			Mode:    "nuvla",
			State:   "online",
			Since:   t0,
			Started: t0.Add(-time.Hour),
			Docker:  client.Docker{Connected: true, Version: "28.5.2", APIVersion: "1.51"},
			Nuvla: &client.Nuvla{
				Endpoint:      "https://nuvla.example",
				NuvlaboxID:    "nuvlabox/abc",
				BoxState:      "COMMISSIONED",
				Online:        true,
				LastHeartbeat: t0.Add(-12 * time.Second),
			},
			Jobs: []client.Job{{ID: "job/1", Action: "start_deployment", Target: "deployment/d1", State: "succeeded",
				Received: t0, Updated: t0}},
			Apps: map[string]int{"running": 1},
		},
		apps: []client.App{{
			ID: "d1", Name: "web", Kind: "nuvla-component", Source: "nuvla", Desired: "running", State: "running",
			Created: t0,
			Services: []client.Service{{Name: "web", Image: "nginx:1.27", State: "running",
				Ports: []client.Port{{Target: 8080, Protocol: "tcp", HostPort: 32768}}}},
		}},
	}
}

type testServer struct {
	*Server
	socket    string
	tokenFile string
	logs      *berthdtest.SyncBuffer
}

// start runs a Server on a socket (and web listener, if web) in a temp dir
// and shuts it down at the end of the test.
func start(t *testing.T, b Backend, web bool, tweak func(*Options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	logs := &berthdtest.SyncBuffer{}
	opts := Options{
		Socket:      filepath.Join(dir, "run", "berthd.sock"),
		SocketGroup: "",
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:     "1.2.3-test",
	}
	if web {
		opts.WebListen = "127.0.0.1:0"
		opts.WebTokenFile = filepath.Join(dir, "web-token")
	}
	if tweak != nil {
		tweak(&opts)
	}
	s, err := New(b, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &testServer{Server: s, socket: opts.Socket, tokenFile: opts.WebTokenFile, logs: logs}
}

// socketHTTP is a plain HTTP client over the unix socket.
func socketHTTP(t *testing.T, socket string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func do(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// errorBody decodes a client.Error and checks it matches the HTTP status.
func errorBody(t *testing.T, resp *http.Response, body []byte) client.Error {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON; body %q", ct, body)
	}
	var e client.Error
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if e.Status != resp.StatusCode || e.Message == "" {
		t.Errorf("error body %+v does not match status %d", e, resp.StatusCode)
	}
	return e
}

func TestSocketIsGroupReadableOnly(t *testing.T) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("no name for my group: %v", err)
	}
	ts := start(t, sampleBackend(), false, func(o *Options) { o.SocketGroup = g.Name })

	fi, err := os.Stat(ts.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want socket 0660", fi.Mode())
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; int(gid) != os.Getgid() {
		t.Errorf("socket group = %d, want %d (%s)", gid, os.Getgid(), g.Name)
	}
	di, err := os.Stat(filepath.Dir(ts.socket))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o755 {
		t.Errorf("socket directory mode = %v, want 0755", di.Mode().Perm())
	}
}

func TestMissingSocketGroupWarnsAndKeepsOwnerOnly(t *testing.T) {
	ts := start(t, sampleBackend(), false, func(o *Options) { o.SocketGroup = "berth-no-such-group-x" })
	fi, err := os.Stat(ts.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want 0660", fi.Mode().Perm())
	}
	if n := strings.Count(ts.logs.String(), "socket group not found"); n != 1 {
		t.Errorf("warned %d times about the missing group, want once; logs:\n%s", n, ts.logs)
	}
}

func TestStatusAndAppsThroughClient(t *testing.T) {
	b := sampleBackend()
	ts := start(t, b, false, nil)
	c := client.New(ts.socket)
	ctx := t.Context()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Version != "1.2.3-test" {
		t.Errorf("version = %q, want the server's 1.2.3-test", st.Version)
	}
	if st.State != "online" || st.Nuvla == nil || !st.Nuvla.Online || st.Nuvla.NuvlaboxID != "nuvlabox/abc" ||
		!st.Nuvla.LastHeartbeat.Equal(b.status.Nuvla.LastHeartbeat) || !st.Since.Equal(t0) {
		t.Errorf("status = %+v (nuvla %+v), want the backend's", st, st.Nuvla)
	}
	if len(st.Jobs) != 1 || st.Jobs[0].ID != "job/1" || st.Apps["running"] != 1 {
		t.Errorf("jobs/apps = %+v %v", st.Jobs, st.Apps)
	}

	apps, err := c.Apps(ctx)
	if err != nil {
		t.Fatalf("Apps: %v", err)
	}
	if len(apps) != 1 || apps[0].ID != "d1" || apps[0].Services[0].Ports[0] != b.apps[0].Services[0].Ports[0] {
		t.Errorf("apps = %+v", apps)
	}

	app, err := c.App(ctx, "d1")
	if err != nil || app.Name != "web" || !app.Created.Equal(t0) {
		t.Errorf("App(d1) = %+v, %v", app, err)
	}

	_, err = c.App(ctx, "nope")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Message != "no app nope" {
		t.Errorf("App(nope) error = %v, want APIError 404 \"no app nope\"", err)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	ts := start(t, &fakeBackend{status: client.Status{State: "standalone"}}, false, nil)
	hc := socketHTTP(t, ts.socket)
	_, body := do(t, hc, "GET", "http://berthd/api/v1/apps", nil)
	if strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("apps with none = %q, want []", body)
	}
	_, body = do(t, hc, "GET", "http://berthd/api/v1/status", nil)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["jobs"]) != "[]" || string(raw["apps"]) != "{}" {
		t.Errorf("status jobs=%s apps=%s, want [] and {}", raw["jobs"], raw["apps"])
	}
}

func TestErrorsAreJSON(t *testing.T) {
	ts := start(t, sampleBackend(), false, nil)
	hc := socketHTTP(t, ts.socket)

	resp, body := do(t, hc, "GET", "http://berthd/api/v1/nope", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown route: %d, want 404", resp.StatusCode)
	}
	errorBody(t, resp, body)

	resp, body = do(t, hc, "POST", "http://berthd/api/v1/status", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status: %d, want 405", resp.StatusCode)
	}
	errorBody(t, resp, body)
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("Allow = %q, want GET", allow)
	}

	resp, body = do(t, hc, "GET", "http://berthd/api/v1/apps/nope", nil)
	if e := errorBody(t, resp, body); resp.StatusCode != 404 || e.Message != "no app nope" {
		t.Errorf("unknown app: %d %+v", resp.StatusCode, e)
	}

	resp, body = do(t, hc, "GET", "http://berthd/healthz", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
}

func TestBackendErrorIs500(t *testing.T) {
	ts := start(t, &fakeBackend{err: errors.New("docker is gone")}, false, nil)
	_, err := client.New(ts.socket).Apps(t.Context())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 500 || !strings.Contains(ae.Message, "docker is gone") {
		t.Errorf("Apps error = %v, want APIError 500 naming the cause", err)
	}
}

func TestPeerCredentials(t *testing.T) {
	dir := t.TempDir()
	s, err := New(sampleBackend(), Options{Socket: filepath.Join(dir, "s.sock")})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan Peer, 1)
	s.mux.HandleFunc("GET /test/peer", func(w http.ResponseWriter, r *http.Request) {
		p, ok := PeerFromContext(r.Context())
		if !ok {
			http.Error(w, "no peer", 500)
			return
		}
		seen <- p
	})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Shutdown(context.Background()) }()

	resp, body := do(t, socketHTTP(t, filepath.Join(dir, "s.sock")), "GET", "http://berthd/test/peer", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("peer handler: %d %s", resp.StatusCode, body)
	}
	p := <-seen
	if p.UID != os.Getuid() || p.GID != os.Getgid() || p.PID != os.Getpid() {
		t.Errorf("peer = %+v, want uid %d gid %d pid %d", p, os.Getuid(), os.Getgid(), os.Getpid())
	}
}

func TestWebListener(t *testing.T) {
	ts := start(t, sampleBackend(), true, nil)
	webURL := ts.WebURL()
	m := regexp.MustCompile(`^http://(127\.0\.0\.1:\d+)/\?token=([0-9a-f]{64})$`).FindStringSubmatch(webURL)
	if m == nil {
		t.Fatalf("WebURL = %q, want http://127.0.0.1:PORT/?token=<64 hex>", webURL)
	}
	base, token := "http://"+m[1], m[2]
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	t.Run("no token is 401", func(t *testing.T) {
		resp, body := do(t, hc, "GET", base+"/api/v1/status", nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
		e := errorBody(t, resp, body)
		if !strings.Contains(e.Message, "missing or wrong token") || !strings.Contains(e.Message, ts.tokenFile) {
			t.Errorf("401 message %q should say what to do and name %s", e.Message, ts.tokenFile)
		}
	})
	t.Run("cross-site requests are 403 even with the token", func(t *testing.T) {
		for site, want := range map[string]int{"cross-site": 403, "same-site": 403, "same-origin": 200, "none": 200} {
			resp, _ := do(t, hc, "GET", base+"/api/v1/status", map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": site})
			if resp.StatusCode != want {
				t.Errorf("Sec-Fetch-Site %s: status %d, want %d", site, resp.StatusCode, want)
			}
		}
	})
	t.Run("wrong token is 401", func(t *testing.T) {
		resp, _ := do(t, hc, "GET", base+"/api/v1/status", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("bearer token is 200", func(t *testing.T) {
		resp, body := do(t, hc, "GET", base+"/api/v1/apps", map[string]string{"Authorization": "Bearer " + token})
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"d1"`) {
			t.Errorf("status %d body %s", resp.StatusCode, body)
		}
		apps, err := client.NewHTTP(base, token).Apps(t.Context())
		if err != nil || len(apps) != 1 {
			t.Errorf("NewHTTP client: %v %v", apps, err)
		}
	})
	t.Run("query token sets cookie and redirects", func(t *testing.T) {
		resp, _ := do(t, hc, "GET", webURL, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("status %d Location %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
		}
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "berth_token" {
				cookie = c
			}
		}
		if cookie == nil || cookie.Value != token || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
			t.Fatalf("cookie = %+v, want HttpOnly SameSite=Strict berth_token", cookie)
		}
		resp, _ = do(t, hc, "GET", base+"/api/v1/status", map[string]string{"Cookie": cookie.String()})
		if resp.StatusCode != 200 {
			t.Errorf("with cookie: %d, want 200", resp.StatusCode)
		}
		// A wrong token still leaves the address bar, without a cookie.
		resp, _ = do(t, hc, "GET", base+"/?x=1&token=wrong", nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?x=1" || len(resp.Cookies()) != 0 {
			t.Errorf("wrong query token: %d %q cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
		}
	})
	t.Run("foreign Host is 403", func(t *testing.T) {
		for _, host := range []string{"evil.example", "evil.example:8484", "192.168.1.5:8484"} {
			resp, body := do(t, hc, "GET", base+"/api/v1/status",
				map[string]string{"Host": host, "Authorization": "Bearer " + token})
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("Host %s: %d, want 403", host, resp.StatusCode)
			}
			errorBody(t, resp, body)
		}
		resp, _ := do(t, hc, "GET", base+"/api/v1/status",
			map[string]string{"Host": "localhost:8484", "Authorization": "Bearer " + token})
		if resp.StatusCode != 200 {
			t.Errorf("Host localhost: %d, want 200", resp.StatusCode)
		}
	})
	t.Run("UI is served with security headers", func(t *testing.T) {
		resp, body := do(t, hc, "GET", base+"/", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "<title>Berth</title>") {
			t.Fatalf("GET /: %d", resp.StatusCode)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
		}
		want := map[string]string{
			"Content-Security-Policy": "default-src 'self'",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		}
		for k, v := range want {
			if !strings.Contains(resp.Header.Get(k), v) {
				t.Errorf("%s = %q, want %q", k, resp.Header.Get(k), v)
			}
		}
		resp, body = do(t, hc, "GET", base+"/app.js", nil)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") ||
			!strings.Contains(string(body), "/api/v1/status") {
			t.Errorf("app.js: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}

func TestUIOnSocket(t *testing.T) {
	ts := start(t, sampleBackend(), false, nil)
	resp, body := do(t, socketHTTP(t, ts.socket), "GET", "http://berthd/", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "app.js") {
		t.Errorf("GET / on the socket: %d", resp.StatusCode)
	}
	if ts.WebURL() != "" {
		t.Errorf("WebURL = %q with no web listener, want empty", ts.WebURL())
	}
}

func TestTokenFileCreatedAndReused(t *testing.T) {
	dir := t.TempDir()
	opts := Options{
		Socket:       filepath.Join(dir, "s.sock"),
		WebListen:    "127.0.0.1:0",
		WebTokenFile: filepath.Join(dir, "state", "web-token"),
	}
	s1, err := New(sampleBackend(), opts)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(opts.WebTokenFile)
	if err != nil {
		t.Fatalf("token file not created: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(opts.WebTokenFile)
	tok := strings.TrimSpace(string(b))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tok) {
		t.Errorf("token %q is not 32 random bytes in hex", tok)
	}

	s2, err := New(sampleBackend(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s2.Shutdown(context.Background()) }()
	if !strings.HasSuffix(s2.WebURL(), "?token="+tok) || s1.token != tok {
		t.Errorf("after restart WebURL = %q, want the stored token %s", s2.WebURL(), tok)
	}
}

func TestShutdownRemovesSocketAndIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	s, err := New(sampleBackend(), Options{Socket: sock, WebListen: "127.0.0.1:0", WebTokenFile: filepath.Join(dir, "tok")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
	s, _ = New(sampleBackend(), Options{Socket: sock, WebListen: "127.0.0.1:0", WebTokenFile: filepath.Join(dir, "tok")})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	if _, err := client.New(sock).Status(t.Context()); err != nil {
		t.Fatalf("not serving: %v", err)
	}
	for i := range 2 {
		if err := s.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown #%d: %v", i+1, err)
		}
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after Shutdown: %v", err)
	}
	_, err = client.New(sock).Status(t.Context())
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot reach berthd at "+sock) ||
		!strings.Contains(err.Error(), "is berthd running?") {
		t.Errorf("after Shutdown: %v, want cannot reach berthd", err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
}

func TestStaleSocketIsReplacedLiveOneIsNot(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)

	// Live: somebody listens there.
	s, _ := New(sampleBackend(), Options{Socket: sock})
	if err := s.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "listening") {
		t.Errorf("Start over a live socket: %v, want an error", err)
		_ = s.Shutdown(t.Context())
	}

	// Stale: the file stays, nobody listens.
	_ = l.Close()
	s, _ = New(sampleBackend(), Options{Socket: sock})
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start over a stale socket: %v", err)
	}
	if _, err := client.New(sock).Status(t.Context()); err != nil {
		t.Errorf("not serving: %v", err)
	}
	_ = s.Shutdown(t.Context())

	// A regular file is never removed.
	if err := os.WriteFile(sock, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ = New(sampleBackend(), Options{Socket: sock})
	if err := s.Start(t.Context()); err == nil {
		t.Error("Start over a regular file succeeded")
		_ = s.Shutdown(t.Context())
	}
	if b, _ := os.ReadFile(sock); string(b) != "keep" {
		t.Error("the regular file was touched")
	}
}

func TestWebListenMustBeLoopback(t *testing.T) {
	dir := t.TempDir()
	for _, addr := range []string{"0.0.0.0:8484", ":8484", "192.168.1.2:8484"} {
		_, err := New(sampleBackend(), Options{Socket: filepath.Join(dir, "s"), WebListen: addr, WebTokenFile: filepath.Join(dir, "t")})
		if err == nil {
			t.Errorf("WebListen %q accepted", addr)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8484": true, "localhost:8484": true, "LOCALHOST": true, "[::1]:8484": true,
		"127.1.2.3": true, "app.localhost:1": true, "localhost.": true,
		"evil.example": false, "localhost.evil.example": false, "10.0.0.1:8484": false, "": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestSessionHostID(t *testing.T) {
	for host, want := range map[string]string{
		"ab12cd34.localhost:8484": "ab12cd34",
		"AB12CD34.localhost":      "ab12cd34",
		"ab12cd34.localhost.":     "ab12cd34",
		"localhost:8484":          "",
		"127.0.0.1:8484":          "",
		"a.b.localhost":           "",
		"x_y.localhost":           "",
		"ab12cd34.example.com":    "",
	} {
		got, ok := SessionHostID(host)
		if got != want || ok != (want != "") {
			t.Errorf("SessionHostID(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
}

// Feature routes learn who calls and through which door: the socket's
// peer (root here, an admin), or the web listener, which acts for its web
// user or, without one, for nobody.
func TestCallerAndDoor(t *testing.T) {
	probe := Routes{Prefixes: []string{"/api/v1"}, Handlers: map[string]http.Handler{
		"GET /probe": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, known := caller.FromContext(r.Context())
			fmt.Fprintf(w, "web=%t known=%t uid=%d admin=%t", FromWeb(r.Context()), known, c.UID, c.Admin)
		}),
	}}
	for name, tc := range map[string]struct {
		webUser      string
		socket, page string
	}{
		"no web user": {"", fmt.Sprintf("web=false known=true uid=%d admin=%t", os.Getuid(), os.Getuid() == 0), "web=true known=false uid=0 admin=false"},
		"web user":    {"65534", "", "web=true known=true uid=65534 admin=false"},
	} {
		t.Run(name, func(t *testing.T) {
			ts := start(t, sampleBackend(), true, func(o *Options) { o.Routes = []Routes{probe}; o.WebUser = tc.webUser })
			if tc.socket != "" {
				if _, body := do(t, socketHTTP(t, ts.socket), "GET", "http://berthd/api/v1/probe", nil); string(body) != tc.socket {
					t.Errorf("socket: %q, want %q", body, tc.socket)
				}
			}
			web, token, _ := strings.Cut(strings.TrimPrefix(ts.WebURL(), "http://"), "/?token=")
			if _, body := do(t, http.DefaultClient, "GET", "http://"+web+"/api/v1/probe", map[string]string{"Authorization": "Bearer " + token}); string(body) != tc.page {
				t.Errorf("web: %q, want %q", body, tc.page)
			}
		})
	}
}
