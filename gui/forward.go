package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

// forwardedPrefixes are the paths the window's page reaches berthd on; the
// rest is the embedded frontend.
var forwardedPrefixes = []string{"/api/", "/skaha/", "/session/"}

// isForwarded reports whether path belongs to berthd rather than to the
// frontend's files.
func isForwarded(path string) bool {
	for _, p := range forwardedPrefixes {
		if strings.HasPrefix(path, p) || path == strings.TrimSuffix(p, "/") {
			return true
		}
	}
	return false
}

// Forwarder is the asset server's handler for /api, /skaha and /session: a
// reverse proxy to berthd's unix socket, so that the frontend's
// fetch('/api/...') and EventSource behave as they do in a browser talking
// to berthd's web listener. Answers stream (Server-Sent Events are flushed
// as they arrive), WebSocket upgrades pass through where the server side
// supports hijacking, and a berthd that is not running is a JSON 502 that
// says how to start it.
type Forwarder struct {
	socket string
	log    *slog.Logger
	proxy  *httputil.ReverseProxy

	// onAppsAnswered runs once, after the first successful GET
	// /api/v1/apps went through (the startup benchmark's fallback).
	onAppsAnswered func()
	appsOnce       sync.Once
}

// NewForwarder returns a Forwarder to berthd's socket at path. onApps, if
// not nil, is called once after the first successful GET /api/v1/apps.
func NewForwarder(socket string, log *slog.Logger, onApps func()) *Forwarder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{socket: socket, log: log, onAppsAnswered: onApps}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:          8,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		DisableCompression:    true,
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "berthd"
			pr.Out.Host = "berthd"
			// The page's origin is the webview's own scheme
			// (wails://wails); berthd's socket trusts the peer
			// credentials, not the origin.
			pr.Out.Header.Del("Origin")
			pr.Out.Header.Del("Referer")
		},
		Transport: tr,
		// -1: flush after every write, so event streams are not
		// buffered.
		FlushInterval: -1,
		ErrorHandler:  f.proxyError,
	}
	return f
}

// ServeHTTP forwards r to berthd.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.onAppsAnswered != nil && r.Method == http.MethodGet && r.URL.Path == "/api/v1/apps" {
		sw := &statusWriter{ResponseWriter: w}
		f.proxy.ServeHTTP(sw, r)
		if sw.code == http.StatusOK {
			f.appsOnce.Do(f.onAppsAnswered)
		}
		return
	}
	f.proxy.ServeHTTP(w, r)
}

// Middleware is the asset server middleware: forwarded paths go to berthd,
// everything else to next (the embedded frontend).
func (f *Forwarder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isForwarded(r.URL.Path) {
			f.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// proxyError answers a request berthd could not answer.
func (f *Forwarder) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The page went away (a closed event stream): nothing to say.
		return
	}
	code, msg := http.StatusBadGateway, unreachableMessage(f.socket, err)
	f.log.Warn("forwarding to berthd failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeJSONError(w, code, msg)
}

// unreachableMessage explains a failed request to berthd in words a desktop
// user can act on.
func unreachableMessage(socket string, err error) string {
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	switch {
	case dial && (errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)):
		return "berthd is not running: start it with systemctl start berthd"
	case dial && errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("permission denied on %s: add yourself to the berth group (sudo adduser $USER berth), then log in again", socket)
	case dial:
		return fmt.Sprintf("cannot reach berthd at %s: %v", socket, op.Err)
	}
	return fmt.Sprintf("berthd did not answer: %v", err)
}

// writeJSONError writes berthd's error body shape, client.Error.
func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	b, _ := json.Marshal(client.Error{Status: code, Message: msg})
	_, _ = w.Write(append(b, '\n'))
}

// statusWriter remembers the status code; Unwrap keeps Flush and Hijack
// reachable through http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
