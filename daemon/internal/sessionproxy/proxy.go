// Package sessionproxy is berthd's reverse proxy to web sessions: it serves
// /session/<type>/<id>/... on the loopback web listener and on the unix
// socket (for the desktop app), checks the session's own token, and
// forwards HTTP, Server-Sent Events and WebSockets to the session's
// container port on 127.0.0.1.
//
// # Access
//
// Every session has a secret token, distinct from berthd's web token. A
// request is let through when it carries that token:
//
//   - as ?token=<token> (the connect URL that `berth open <id>` and the
//     desktop app open): the proxy then sets the cookie below. For notebook
//     sessions the query goes on to Jupyter untouched (the session token is
//     Jupyter's token too, and Jupyter sets its own login cookie from it);
//     for other types a GET or HEAD is redirected (303) to the same URL
//     without the token, so it leaves the address bar and the app never
//     sees it;
//   - as the cookie berth_session, set HttpOnly with Path=/session/<type>/<id>/
//     and no expiry (it lasts until the browser closes);
//   - as "Authorization: Bearer <token>" (or Jupyter's "token <token>").
//
// The cookie is SameSite=Lax, not Strict: the connect URL is usually opened
// from another application or page, a cross-site navigation, and for
// non-notebook sessions it is answered by a redirect; under Strict the
// browser would not send the cookie it has just received on that
// redirected navigation (nor on any first navigation from elsewhere), and
// the person would see a 401. Lax still withholds the cookie from
// cross-site subresource requests and cross-site POSTs.
//
// Without a valid token the answer is 401, telling the person to open the
// session's connect URL. A token of another session never opens this one:
// the token is compared (in constant time) with this session's only.
// Requests arriving on the unix socket from a user who is neither the
// session's owner nor an admin are refused (403) even with the token.
//
// # Forwarding
//
// The upstream request keeps the browser's Host (Jupyter compares the
// WebSocket Origin with it) and gains X-Forwarded-For/-Host/-Proto and
// X-Forwarded-Prefix (/session/<type>/<id>). The prefix is stripped only
// for targets that ask for it (contributed apps serve at /). berthd's
// cookies (berth_session, and the web UI's berth_token) are removed from
// the upstream request, and so is an Authorization header carrying the
// session token, except for notebooks, where it is Jupyter's own. Responses
// stream (each write is flushed, for SSE), WebSocket upgrades are forwarded
// both ways, and the app's own response headers decide its security policy:
// the Content-Security-Policy and X-Frame-Options that berthd sets for its
// own UI are dropped from forwarded responses.
//
// Each authorised request and the WebSocket traffic in both directions
// count as activity: Resolver.Touch is called, at most once per
// TouchInterval per session, so idle culling is measured from the proxy.
//
// A target whose address is empty answers 502 "session <id> is starting";
// one that does not answer, 502 "session <id> is not reachable". Target
// addresses must be loopback IP addresses; anything else is refused.
package sessionproxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"github.com/berth-edge/berth/daemon/internal/api"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/caller"
	"github.com/berth-edge/berth/daemon/internal/httpjson"
)

// CookieName is the cookie that carries a session's token after its connect
// URL was opened once.
const CookieName = "berth_session"

// webCookieName is the web UI's cookie (package api); it never reaches a
// session.
const webCookieName = "berth_token"

// TouchInterval is the least time between two Touch calls for one session.
const TouchInterval = 5 * time.Second

// Target is where one session is served. It mirrors the sessions Manager's
// target field for field, so berthd converts one into the other.
type Target struct {
	// ID is the session id; Type its session type (client.TypeNotebook...).
	ID, Type string
	// Owner is the owner's uid in decimal (the berth.owner label).
	Owner string
	// Token is the session's secret; an empty token opens nothing.
	Token string
	// Addr is the session's web port as 127.0.0.1:port; "" while the
	// session is starting.
	Addr string
	// StripPrefix forwards /session/<type>/<id>/x as /x (contributed apps).
	StripPrefix bool
}

// Resolver finds sessions and records their activity; the sessions Manager
// implements it.
type Resolver interface {
	// Target returns the session id's target; false when there is none.
	Target(id string) (Target, bool)
	// Touch records traffic to session id at time at.
	Touch(id string, at time.Time)
}

// Option changes a proxy's defaults.
type Option func(*proxy)

// WithTransport sets the transport to the sessions (tests; the default
// dials with a 5s timeout and never uses an HTTP proxy).
func WithTransport(rt http.RoundTripper) Option { return func(p *proxy) { p.transport = rt } }

// WithClock sets the clock used for Touch (tests).
func WithClock(now func() time.Time) Option { return func(p *proxy) { p.now = now } }

// New returns the handler of "/session/<type>/<id>/...". A nil log discards.
func New(r Resolver, log *slog.Logger, opts ...Option) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &proxy{
		resolver: r,
		log:      log.With("component", "sessionproxy"),
		now:      time.Now,
		touched:  map[string]time.Time{},
	}
	for _, o := range opts {
		o(p)
	}
	if p.transport == nil {
		p.transport = &http.Transport{
			Proxy:                 nil, // sessions are on loopback: never through an HTTP proxy
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true, // pass the browser's Accept-Encoding through untouched
		}
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		FlushInterval:  -1,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	return p
}

type proxy struct {
	resolver  Resolver
	log       *slog.Logger
	now       func() time.Time
	transport http.RoundTripper
	rp        *httputil.ReverseProxy

	mu      sync.Mutex
	touched map[string]time.Time // last Touch per session
}

type ctxKey struct{}

// forward is what rewrite and the response hooks need to know of a request.
type forward struct {
	target Target
	prefix string // /session/<type>/<id>
}

// ParsePath splits "/session/<type>/<id>/rest" into type, id and "/rest",
// as the web listener's origin check does (api.SessionPath).
func ParsePath(p string) (typ, id, rest string, ok bool) { return api.SessionPath(p) }

// typeMatches reports whether the URL's type segment names the target's
// type; skaha's "contrib" is accepted for contributed.
func typeMatches(urlType, targetType string) bool {
	return urlType == targetType || urlType == "contrib" && targetType == client.TypeContributed
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	typ, id, rest, ok := ParsePath(r.URL.Path)
	if !ok {
		httpjson.Error(w, http.StatusNotFound, "no such session path "+r.URL.Path+": expected /session/<type>/<id>/")
		return
	}
	t, ok := p.resolver.Target(id)
	if !ok || !typeMatches(typ, t.Type) {
		httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("no %s session %s", typ, id))
		return
	}
	prefix := "/session/" + typ + "/" + id
	if rest == "" {
		u := *r.URL
		u.Path, u.RawPath = prefix+"/", ""
		u.Scheme, u.Host, u.User = "", "", nil
		http.Redirect(w, r, u.String(), http.StatusPermanentRedirect)
		return
	}
	if c, ok := caller.FromContext(r.Context()); ok && !c.Web && !c.Admin && t.Owner != "" && c.Owner() != t.Owner {
		httpjson.Error(w, http.StatusForbidden, fmt.Sprintf("session %s belongs to another user", id))
		return
	}

	q := r.URL.Query()
	if q.Has("token") {
		if !validToken(t.Token, q.Get("token")) {
			p.unauthorized(w, r, id, "the token in the URL is not this session's")
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name:     CookieName,
			Value:    t.Token,
			Path:     prefix + "/",
			HttpOnly: true,
			SameSite: http.SameSiteLaxMode,
		})
		if t.Type != client.TypeNotebook && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			u.Scheme, u.Host, u.User = "", "", nil
			w.Header().Set("Cache-Control", "no-store")
			p.touch(id)
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
	} else if !p.authorised(r, t) {
		p.unauthorized(w, r, id, "")
		return
	}
	p.touch(id)

	if t.Addr == "" {
		p.unavailable(w, r, id, fmt.Sprintf("session %s is starting: try again in a moment", id), true)
		return
	}
	if err := checkLoopback(t.Addr); err != nil {
		p.log.Warn("refusing to forward to a non-loopback session address", "session", id, "addr", t.Addr)
		p.unavailable(w, r, id, fmt.Sprintf("session %s is not reachable: %v", id, err), false)
		return
	}
	// berthd's own UI headers must not constrain the app: it sets its own.
	w.Header().Del("Content-Security-Policy")
	w.Header().Del("X-Frame-Options")
	ctx := context.WithValue(r.Context(), ctxKey{}, &forward{target: t, prefix: prefix})
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// authorised reports whether r carries t's token in the Authorization
// header or the session cookie.
func (p *proxy) authorised(r *http.Request, t Target) bool {
	if tok, ok := bearer(r.Header.Get("Authorization")); ok && validToken(t.Token, tok) {
		return true
	}
	for _, c := range r.Cookies() {
		if c.Name == CookieName && validToken(t.Token, c.Value) {
			return true
		}
	}
	return false
}

// bearer returns the token of an "Authorization: Bearer <t>" or Jupyter's
// "Authorization: token <t>" header.
func bearer(auth string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(auth), " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "token")) {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// validToken compares in constant time, hashing first so that the length
// does not leak either. An empty want matches nothing.
func validToken(want, got string) bool {
	if want == "" || got == "" {
		return false
	}
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// checkLoopback accepts only "<loopback IP>:<port>".
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q is not host:port", addr)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("address %q is not a loopback address", addr)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("address %q has no port", addr)
	}
	return nil
}

// touch calls Resolver.Touch for id unless it did less than TouchInterval
// ago.
func (p *proxy) touch(id string) {
	now := p.now()
	p.mu.Lock()
	last, ok := p.touched[id]
	if ok && now.Sub(last) < TouchInterval && !now.Before(last) {
		p.mu.Unlock()
		return
	}
	p.touched[id] = now
	if len(p.touched) > 1024 {
		for k, v := range p.touched {
			if now.Sub(v) > TouchInterval {
				delete(p.touched, k)
			}
		}
	}
	p.mu.Unlock()
	p.resolver.Touch(id, now)
}

func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(ctxKey{}).(*forward)
	pr.SetURL(&url.URL{Scheme: "http", Host: f.target.Addr})
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Forwarded-Prefix", f.prefix)

	out := pr.Out.URL
	out.Path, out.RawPath = pr.In.URL.Path, pr.In.URL.RawPath
	if f.target.StripPrefix {
		out.Path = strings.TrimPrefix(out.Path, f.prefix)
		if out.RawPath != "" {
			out.RawPath = strings.TrimPrefix(out.RawPath, f.prefix)
		}
	}
	out.RawQuery = pr.In.URL.RawQuery
	notebook := f.target.Type == client.TypeNotebook
	if !notebook && pr.In.URL.Query().Has("token") {
		q := pr.In.URL.Query()
		q.Del("token")
		out.RawQuery = q.Encode()
	}

	// berthd's cookies stay here.
	if cs := pr.Out.Cookies(); len(cs) > 0 {
		kept := make([]string, 0, len(cs))
		for _, c := range cs {
			if c.Name != CookieName && c.Name != webCookieName {
				kept = append(kept, c.String())
			}
		}
		pr.Out.Header.Del("Cookie")
		if len(kept) > 0 {
			pr.Out.Header.Set("Cookie", strings.Join(kept, "; "))
		}
	}
	if tok, ok := bearer(pr.Out.Header.Get("Authorization")); ok && !notebook && validToken(f.target.Token, tok) {
		pr.Out.Header.Del("Authorization")
	}
}

// modifyResponse counts WebSocket traffic as activity.
func (p *proxy) modifyResponse(res *http.Response) error {
	if res.StatusCode != http.StatusSwitchingProtocols {
		return nil
	}
	f, _ := res.Request.Context().Value(ctxKey{}).(*forward)
	if f == nil {
		return nil
	}
	rwc, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		return nil // the ReverseProxy reports it
	}
	res.Body = &activityConn{ReadWriteCloser: rwc, touch: func() { p.touch(f.target.ID) }}
	return nil
}

// activityConn touches the session on every read and write of an upgraded
// connection (touch throttles).
type activityConn struct {
	io.ReadWriteCloser
	touch func()
}

func (c *activityConn) Read(b []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *activityConn) Write(b []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (p *proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	f, _ := r.Context().Value(ctxKey{}).(*forward)
	id := ""
	if f != nil {
		id = f.target.ID
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads an answer.
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	p.log.Debug("forwarding to session failed", "session", id, "err", err)
	if errors.Is(err, syscall.ECONNREFUSED) {
		p.unavailable(w, r, id, fmt.Sprintf("session %s is not reachable yet: nothing answers on its port (it may still be starting)", id), true)
		return
	}
	p.unavailable(w, r, id, fmt.Sprintf("session %s is not reachable: %v", id, err), false)
}

// wantsHTML reports whether the client is a browser navigating (it accepts
// HTML) rather than a script.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func (p *proxy) unauthorized(w http.ResponseWriter, r *http.Request, id, why string) {
	msg := fmt.Sprintf("session %s needs its token: open its connect URL (from `berth open %s` or the desktop app's session list)", id, id)
	if why != "" {
		msg = why + "; " + msg
	}
	if wantsHTML(r) {
		page(w, http.StatusUnauthorized, "Session "+id+": token needed", msg, false)
		return
	}
	httpjson.Error(w, http.StatusUnauthorized, msg)
}

// unavailable answers 502; retry makes the HTML page reload itself.
func (p *proxy) unavailable(w http.ResponseWriter, r *http.Request, id, msg string, retry bool) {
	if wantsHTML(r) {
		page(w, http.StatusBadGateway, "Session "+id, msg, retry)
		return
	}
	httpjson.Error(w, http.StatusBadGateway, msg)
}

// page writes a small HTML answer for a browser.
func page(w http.ResponseWriter, code int, title, msg string, refresh bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	meta := ""
	if refresh {
		meta = `<meta http-equiv="refresh" content="3">`
	}
	_, _ = fmt.Fprintf(w, "<!doctype html><html><head><meta charset=\"utf-8\">%s<title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>\n",
		meta, html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}
