package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

const (
	// tokenCookie carries the web token after the first page load.
	tokenCookie = "berth_token"
	// tokenParam is the query parameter of WebURL.
	tokenParam = "token"
	// minTokenLen refuses a hand-written token too short to be a secret.
	minTokenLen = 16
	// cookieMaxAge keeps the browser signed in for 90 days.
	cookieMaxAge = 90 * 24 * 3600
)

// webGuard protects the web listener: loopback Host only, the token for
// every /api request, and the ?token= of WebURL turned into a cookie.
//
// Web sessions get an origin of their own, http://<id>.localhost:<port>,
// so that a session's pages cannot script berthd's UI, its API or another
// session through the browser's same-origin rules: a session host serves
// that session's /session/.../<id>/ paths and nothing else, and a
// /session/ URL on the UI's host is redirected to its session's host.
// Browsers also mark their own cross-site requests (Sec-Fetch-Site), and
// the API refuses those, so a page elsewhere cannot ride the UI's cookie.
func (s *Server) webGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden,
				fmt.Sprintf("host %q is not allowed: open the web UI as http://127.0.0.1 or http://localhost", r.Host))
			return
		}
		if id, ok := SessionHostID(r.Host); ok {
			if _, pathID, _, ok := SessionPath(r.URL.Path); !ok || pathID != id {
				writeError(w, http.StatusNotFound, "this address serves session "+id+" only")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if _, id, _, ok := SessionPath(r.URL.Path); ok {
			u := "http://" + id + ".localhost"
			if _, port, err := net.SplitHostPort(r.Host); err == nil {
				u += ":" + port
			}
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, u+r.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
		isAPI := r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") ||
			r.URL.Path == "/skaha" || strings.HasPrefix(r.URL.Path, "/skaha/") || r.URL.Path == "/metrics"
		if isAPI {
			switch r.Header.Get("Sec-Fetch-Site") {
			case "", "same-origin", "none":
			default:
				writeError(w, http.StatusForbidden, "cross-site requests to the local API are refused")
				return
			}
		}
		if !isAPI && r.URL.Query().Has(tokenParam) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			s.acceptQueryToken(w, r)
			return
		}
		if isAPI && !s.validToken(requestToken(r)) {
			writeError(w, http.StatusUnauthorized,
				"missing or wrong token: open the URL berthd printed at start-up (or read "+s.opts.WebTokenFile+")")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SessionHostID returns the session id a Host header names when it is a
// session's own origin, "<id>.localhost" with an optional port.
func SessionHostID(hostport string) (string, bool) {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	id, ok := strings.CutSuffix(strings.TrimSuffix(strings.ToLower(host), "."), ".localhost")
	if !ok || !validSegment(id) {
		return "", false
	}
	return id, true
}

// SessionPath splits "/session/<type>/<id>/rest" into type, id and
// "/rest" (rest is "" when the path stops after the id, without a slash).
// ok is false when the path has no type or id, or they hold characters
// other than [a-z0-9-].
func SessionPath(p string) (typ, id, rest string, ok bool) {
	s, found := strings.CutPrefix(p, "/session/")
	if !found {
		return "", "", "", false
	}
	typ, s, found = strings.Cut(s, "/")
	if !found || !validSegment(typ) {
		return "", "", "", false
	}
	id, rest, found = strings.Cut(s, "/")
	if !validSegment(id) {
		return "", "", "", false
	}
	if found {
		rest = "/" + rest
	}
	return typ, id, rest, true
}

// validSegment accepts a session id or type: lower-case letters, digits
// and dashes.
func validSegment(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// acceptQueryToken sets the cookie when ?token= is right, and in any case
// redirects to the same URL without the token, so it leaves the address bar.
func (s *Server) acceptQueryToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if s.validToken(q.Get(tokenParam)) {
		http.SetCookie(w, &http.Cookie{
			Name:     tokenCookie,
			Value:    s.token,
			Path:     "/",
			MaxAge:   cookieMaxAge,
			HttpOnly: true,
			SameSite: http.SameSiteStrictMode,
		})
	}
	q.Del(tokenParam)
	u := *r.URL
	u.RawQuery = q.Encode()
	u.Scheme, u.Host, u.User = "", "", nil
	if u.Path == "" {
		u.Path = "/"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// requestToken is the bearer token, else the cookie's.
func requestToken(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if c, err := r.Cookie(tokenCookie); err == nil {
		return c.Value
	}
	return ""
}

// validToken compares in constant time (hashing first, so the length does
// not leak either).
func (s *Server) validToken(got string) bool {
	if s.token == "" || got == "" {
		return false
	}
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(s.token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// loopbackHost reports whether a Host header names this machine by a
// loopback address or "localhost" — a page from another site that rebinds
// its DNS name to 127.0.0.1 still sends its own name and is refused.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// checkLoopbackListen refuses a web listener reachable from the network.
func checkLoopbackListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("web listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("web listen address %q is not a loopback address (use 127.0.0.1:PORT)", addr)
	}
	return nil
}

// loadOrCreateToken reads the web token from path, or generates one (32
// random bytes, hex) and writes it with mode 0600.
func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			break // an empty file is as good as none
		}
		if len(tok) < minTokenLen {
			return "", fmt.Errorf("web token in %s is shorter than %d characters: delete the file and berthd writes a new one", path, minTokenLen)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("web token file: %w", err)
			}
		}
		return tok, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("web token file: %w", err)
	}

	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generating the web token: %w", err)
	}
	tok := hex.EncodeToString(raw)
	if err := writeFile0600(path, []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("web token file: %w", err)
	}
	return tok, nil
}

// writeFile0600 writes data to path atomically with mode 0600.
func writeFile0600(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".web-token-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}
