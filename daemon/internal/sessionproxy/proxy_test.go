package sessionproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/caller"
)

// stubResolver is a map of targets that records touches.
type stubResolver struct {
	mu      sync.Mutex
	targets map[string]Target
	touches map[string]int
}

func newResolver(ts ...Target) *stubResolver {
	r := &stubResolver{targets: map[string]Target{}, touches: map[string]int{}}
	for _, t := range ts {
		r.targets[t.ID] = t
	}
	return r
}

func (r *stubResolver) Target(id string) (Target, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.targets[id]
	return t, ok
}

func (r *stubResolver) Touch(id string, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.touches[id]++
}

func (r *stubResolver) touchCount(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.touches[id]
}

// seen is what the upstream app received.
type seen struct {
	Path, RawQuery, Host string
	Header               http.Header
}

// upstream is a real HTTP server on 127.0.0.1: it echoes what it got, streams
// SSE at /events (…/events when the prefix is kept) and echoes WebSocket
// messages at /ws.
func upstream(t *testing.T, release <-chan struct{}) *httptest.Server {
	t.Helper()
	ws := websocket.Handler(func(c *websocket.Conn) { _, _ = io.Copy(c, c) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/ws"):
			ws.ServeHTTP(w, r)
		case strings.HasSuffix(r.URL.Path, "/events"):
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, "data: first\n\n")
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			fmt.Fprint(w, "data: second\n\n")
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(seen{Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// front serves the proxy under /session/ like the api package does; when
// as is non-nil the requests carry that caller (a unix-socket peer).
func front(t *testing.T, h http.Handler, as *caller.Caller) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/session/", h)
	var hh http.Handler = mux
	if as != nil {
		hh = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r.WithContext(caller.With(r.Context(), *as)))
		})
	}
	srv := httptest.NewServer(hh)
	t.Cleanup(srv.Close)
	return srv
}

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t *testing.T, c *http.Client, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func decodeSeen(t *testing.T, body string) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("upstream answer %q: %v", body, err)
	}
	return s
}

const (
	nbToken = "nb-0123456789abcdef0123456789abcdef"
	ctToken = "ct-0123456789abcdef0123456789abcdef"
)

func setup(t *testing.T, opts ...Option) (*stubResolver, *httptest.Server, *httptest.Server, chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	up := upstream(t, release)
	addr := strings.TrimPrefix(up.URL, "http://")
	res := newResolver(
		Target{ID: "nb1", Type: client.TypeNotebook, Owner: "1000", Token: nbToken, Addr: addr},
		Target{ID: "ct1", Type: client.TypeContributed, Owner: "1000", Token: ctToken, Addr: addr, StripPrefix: true},
	)
	fr := front(t, New(res, nil, opts...), nil)
	return res, up, fr, release
}

func TestNotFound(t *testing.T) {
	_, _, fr, _ := setup(t)
	c := noRedirect(nil)
	for _, p := range []string{
		"/session/notebook/nope/",              // unknown id
		"/session/contributed/nb1/",            // type mismatch
		"/session/carta/ct1/?token=" + ctToken, // type mismatch, even with the token
		"/session/notebook/",                   // no id
		"/session/Notebook/nb1/",               // bad type segment
	} {
		resp, body := get(t, c, fr.URL+p, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
			t.Errorf("GET %s: %d %s %q, want JSON 404", p, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

func TestTokenRequired(t *testing.T) {
	res, _, fr, _ := setup(t)
	c := noRedirect(nil)
	cases := []struct {
		name string
		path string
		hdr  map[string]string
	}{
		{"none", "/session/notebook/nb1/lab", nil},
		{"other session's query token", "/session/notebook/nb1/lab?token=" + ctToken, nil},
		{"other session's bearer", "/session/notebook/nb1/lab", map[string]string{"Authorization": "Bearer " + ctToken}},
		{"other session's cookie", "/session/notebook/nb1/lab", map[string]string{"Cookie": CookieName + "=" + ctToken}},
		{"contributed, notebook's token", "/session/contributed/ct1/?token=" + nbToken, nil},
		{"basic auth", "/session/contributed/ct1/", map[string]string{"Authorization": "Basic " + ctToken}},
		{"empty query token", "/session/contributed/ct1/?token=", nil},
	}
	for _, tc := range cases {
		resp, body := get(t, c, fr.URL+tc.path, tc.hdr)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "connect URL") {
			t.Errorf("%s: %d %q, want 401 naming the connect URL", tc.name, resp.StatusCode, body)
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("%s: a cookie was set: %s", tc.name, resp.Header.Get("Set-Cookie"))
		}
	}
	resp, body := get(t, c, fr.URL+"/session/notebook/nb1/lab", map[string]string{"Accept": "text/html,*/*"})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "berth open nb1") {
		t.Errorf("browser without token: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if n := res.touchCount("nb1") + res.touchCount("ct1"); n != 0 {
		t.Errorf("unauthorised requests touched sessions %d times", n)
	}
}

func TestContributedConnectURL(t *testing.T) {
	res, up, fr, _ := setup(t)
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	resp, _ := get(t, c, fr.URL+"/session/contributed/ct1/app/page?x=1&token="+ctToken, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("connect URL: %d, want 303", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != "/session/contributed/ct1/app/page?x=1" {
		t.Errorf("redirect to %q, want the URL without the token", loc)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/session/contributed/ct1/" || ck.Value != ctToken || ck.MaxAge != 0 {
		t.Fatalf("cookie = %+v", ck)
	}

	// The browser follows the redirect with the cookie, plus its own cookies.
	u, _ := url.Parse(fr.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: "app", Value: "keep", Path: "/"}, {Name: webCookieName, Value: "webtoken", Path: "/"}})
	resp, body := get(t, c, fr.URL+"/session/contributed/ct1/app/page?x=1", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with cookie: %d %q", resp.StatusCode, body)
	}
	s := decodeSeen(t, body)
	if s.Path != "/app/page" || s.RawQuery != "x=1" {
		t.Errorf("upstream got %s?%s, want /app/page?x=1 (prefix stripped)", s.Path, s.RawQuery)
	}
	if got := s.Header.Get("Cookie"); got != "app=keep" {
		t.Errorf("upstream Cookie = %q, want only the app's cookie", got)
	}
	if s.Host != u.Host || s.Header.Get("X-Forwarded-Host") != u.Host || s.Header.Get("X-Forwarded-Proto") != "http" ||
		s.Header.Get("X-Forwarded-Prefix") != "/session/contributed/ct1" || s.Header.Get("X-Forwarded-For") == "" {
		t.Errorf("upstream Host %q, headers %v", s.Host, s.Header)
	}
	if strings.Contains(body, ctToken) {
		t.Errorf("the session token reached the app: %s", body)
	}
	_ = up

	// A bearer works too, and is not forwarded.
	resp, body = get(t, noRedirect(nil), fr.URL+"/session/contributed/ct1/?token="+ctToken+"x", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong query token: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, noRedirect(nil), fr.URL+"/session/contrib/ct1/x", map[string]string{"Authorization": "Bearer " + ctToken})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer: %d %q", resp.StatusCode, body)
	}
	if s := decodeSeen(t, body); s.Header.Get("Authorization") != "" || s.Path != "/x" {
		t.Errorf("bearer: upstream got path %s, Authorization %q", s.Path, s.Header.Get("Authorization"))
	}
	if res.touchCount("ct1") == 0 {
		t.Error("no Touch")
	}
}

func TestNotebookKeepsTokenAndPrefix(t *testing.T) {
	_, _, fr, _ := setup(t)
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	resp, body := get(t, c, fr.URL+"/session/notebook/nb1/lab?token="+nbToken, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("connect URL: %d %q", resp.StatusCode, body)
	}
	s := decodeSeen(t, body)
	if s.Path != "/session/notebook/nb1/lab" || s.RawQuery != "token="+nbToken {
		t.Errorf("upstream got %s?%s, want the prefix and the token kept", s.Path, s.RawQuery)
	}
	// Then the cookie alone; Jupyter's own Authorization header passes.
	resp, body = get(t, c, fr.URL+"/session/notebook/nb1/api/status", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with cookie: %d %q", resp.StatusCode, body)
	}
	if s := decodeSeen(t, body); s.Header.Get("Cookie") != "" {
		t.Errorf("berth's cookie reached Jupyter: %q", s.Header.Get("Cookie"))
	}
	resp, body = get(t, noRedirect(nil), fr.URL+"/session/notebook/nb1/api/status", map[string]string{"Authorization": "token " + nbToken})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Jupyter token header: %d %q", resp.StatusCode, body)
	}
	if s := decodeSeen(t, body); s.Header.Get("Authorization") != "token "+nbToken {
		t.Errorf("notebook Authorization = %q, want it forwarded", s.Header.Get("Authorization"))
	}
}

func TestTrailingSlashRedirect(t *testing.T) {
	_, _, fr, _ := setup(t)
	resp, _ := get(t, noRedirect(nil), fr.URL+"/session/notebook/nb1?token=abc", nil)
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "/session/notebook/nb1/?token=abc" {
		t.Errorf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSSEStreams(t *testing.T) {
	_, _, fr, release := setup(t)
	req, _ := http.NewRequest(http.MethodGet, fr.URL+"/session/contributed/ct1/events", nil)
	req.Header.Set("Authorization", "Bearer "+ctToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event before the stream ends: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Errorf("rest of the stream: %q", rest)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestWebSocketAndTouch(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	res, _, fr, _ := setup(t, WithClock(clock.Now))

	// Several requests inside one interval touch once.
	for range 3 {
		resp, _ := get(t, noRedirect(nil), fr.URL+"/session/contributed/ct1/", map[string]string{"Authorization": "Bearer " + ctToken})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
	}
	if n := res.touchCount("ct1"); n != 1 {
		t.Fatalf("touches after 3 quick requests = %d, want 1", n)
	}

	wsURL := "ws" + strings.TrimPrefix(fr.URL, "http") + "/session/contributed/ct1/ws"
	cfg, err := websocket.NewConfig(wsURL, fr.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Cookie", CookieName+"="+ctToken)
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("websocket through the proxy: %v", err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(10 * time.Second))
	echo := func(msg string) {
		t.Helper()
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Fatalf("echo %q, got %q", msg, got)
		}
	}
	echo("hello")
	before := res.touchCount("ct1")
	clock.Add(TouchInterval + time.Second)
	echo("again") // WebSocket traffic alone, no new HTTP request
	if n := res.touchCount("ct1"); n != before+1 {
		t.Errorf("touches after WebSocket traffic past the interval = %d, want %d", n, before+1)
	}

	// A WebSocket without the token is refused.
	cfg2, _ := websocket.NewConfig(wsURL, fr.URL)
	cfg2.Header.Set("Cookie", CookieName+"="+nbToken)
	if ws2, err := websocket.DialConfig(cfg2); err == nil {
		ws2.Close()
		t.Error("websocket with another session's cookie was let through")
	}
}

func TestUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	dialed := make(chan string, 1)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case dialed <- addr:
		default:
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	res := newResolver(
		Target{ID: "st", Type: client.TypeContributed, Token: ctToken, StripPrefix: true},
		Target{ID: "cl", Type: client.TypeContributed, Token: ctToken, Addr: closed, StripPrefix: true},
		Target{ID: "far", Type: client.TypeContributed, Token: ctToken, Addr: "192.0.2.1:80", StripPrefix: true},
		Target{ID: "named", Type: client.TypeContributed, Token: ctToken, Addr: "localhost:80", StripPrefix: true},
		Target{ID: "notok", Type: client.TypeContributed, Token: "", Addr: closed, StripPrefix: true},
	)
	fr := front(t, New(res, nil, WithTransport(tr)), nil)
	auth := map[string]string{"Authorization": "Bearer " + ctToken}
	for _, tc := range []struct {
		id   string
		code int
		want string
	}{
		{"st", http.StatusBadGateway, "session st is starting"},
		{"cl", http.StatusBadGateway, "session cl is not reachable"},
		{"far", http.StatusBadGateway, "not a loopback address"},
		{"named", http.StatusBadGateway, "not a loopback address"},
		{"notok", http.StatusUnauthorized, "needs its token"},
	} {
		for len(dialed) > 0 {
			<-dialed
		}
		resp, body := get(t, noRedirect(nil), fr.URL+"/session/contributed/"+tc.id+"/", auth)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %q, want %d %q", tc.id, resp.StatusCode, body, tc.code, tc.want)
		}
		if tc.id == "far" || tc.id == "named" {
			select {
			case a := <-dialed:
				t.Errorf("%s: dialed %s", tc.id, a)
			default:
			}
		}
	}
	resp, body := get(t, noRedirect(nil), fr.URL+"/session/contributed/st/", map[string]string{"Authorization": "Bearer " + ctToken, "Accept": "text/html"})
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("starting, browser: %d %q", resp.StatusCode, body)
	}
}

func TestSocketCallerMustOwn(t *testing.T) {
	up := upstream(t, nil)
	addr := strings.TrimPrefix(up.URL, "http://")
	res := newResolver(Target{ID: "ct1", Type: client.TypeContributed, Owner: "1000", Token: ctToken, Addr: addr, StripPrefix: true})
	auth := map[string]string{"Authorization": "Bearer " + ctToken}
	for _, tc := range []struct {
		name string
		c    caller.Caller
		code int
	}{
		{"owner", caller.Caller{UID: 1000}, http.StatusOK},
		{"admin", caller.Caller{UID: 0, Admin: true}, http.StatusOK},
		{"web listener", caller.Caller{UID: 1001, Web: true}, http.StatusOK},
		{"other user", caller.Caller{UID: 1001}, http.StatusForbidden},
	} {
		fr := front(t, New(res, nil), &tc.c)
		resp, body := get(t, noRedirect(nil), fr.URL+"/session/contributed/ct1/", auth)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d %q, want %d", tc.name, resp.StatusCode, body, tc.code)
		}
	}
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in            string
		typ, id, rest string
		ok            bool
	}{
		{"/session/notebook/abc123/lab", "notebook", "abc123", "/lab", true},
		{"/session/notebook/abc123/", "notebook", "abc123", "/", true},
		{"/session/notebook/abc123", "notebook", "abc123", "", true},
		{"/session/contributed/a-b/x/y?z", "contributed", "a-b", "/x/y?z", true},
		{"/session/notebook/", "", "", "", false},
		{"/session/notebook", "", "", "", false},
		{"/session//abc/", "", "", "", false},
		{"/session/Notebook/abc/", "", "", "", false},
		{"/session/notebook/ab_c/", "", "", "", false},
		{"/sessions/notebook/abc/", "", "", "", false},
		{"/session/notebook/" + strings.Repeat("a", 65) + "/", "", "", "", false},
	} {
		typ, id, rest, ok := ParsePath(tc.in)
		if typ != tc.typ || id != tc.id || rest != tc.rest || ok != tc.ok {
			t.Errorf("ParsePath(%q) = %q %q %q %v, want %q %q %q %v", tc.in, typ, id, rest, ok, tc.typ, tc.id, tc.rest, tc.ok)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8888", true},
		{"127.1.2.3:80", true},
		{"[::1]:5000", true},
		{"[::ffff:127.0.0.1]:5000", true},
		{"localhost:80", false},
		{"10.0.0.1:80", false},
		{"0.0.0.0:80", false},
		{"127.0.0.1", false},
		{"127.0.0.1:0", false},
		{"", false},
	} {
		if err := checkLoopback(tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		in, tok string
		ok      bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"token abc", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	} {
		tok, ok := bearer(tc.in)
		if tok != tc.tok || ok != tc.ok {
			t.Errorf("bearer(%q) = %q %v, want %q %v", tc.in, tok, ok, tc.tok, tc.ok)
		}
	}
}

// BenchmarkProxyGET measures a small GET through the proxy (with the
// cookie); BenchmarkDirectGET is the same request straight to the app.
func BenchmarkProxyGET(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()
	res := newResolver(Target{ID: "ct1", Type: client.TypeContributed, Token: ctToken, Addr: strings.TrimPrefix(up.URL, "http://"), StripPrefix: true})
	mux := http.NewServeMux()
	mux.Handle("/session/", New(res, nil))
	fr := httptest.NewServer(mux)
	defer fr.Close()
	benchGET(b, fr.URL+"/session/contributed/ct1/x", CookieName+"="+ctToken)
}

func BenchmarkDirectGET(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()
	benchGET(b, up.URL+"/x", "")
}

func benchGET(b *testing.B, u, cookie string) {
	c := &http.Client{}
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
