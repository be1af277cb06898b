// Package api is berthd's local API: HTTP/JSON on a unix socket and,
// optionally, on a loopback TCP port that also serves the web UI.
//
// The unix socket is the main door. Who may open it is decided by its file
// mode (0660) and group (SocketGroup, "berth" by default); each request
// carries the caller's uid/gid/pid from the socket's peer credentials
// (PeerFromContext), so later features can authorise by them.
//
// The web listener is for a browser on the box itself. Every /api request (and /metrics) on
// it needs the web token (Authorization: Bearer, or the berth_token cookie
// that opening WebURL once sets), and requests whose Host is not a loopback
// name are refused (DNS-rebinding defence). The static UI is served without
// the token; it explains what to do when the API answers 401.
//
// Routes (both listeners):
//
//	GET /api/v1/status      client.Status
//	GET /api/v1/apps        []client.App, sorted by name then id
//	GET /api/v1/apps/{id}   client.App, or 404 "no app <id>"
//	GET /api/v1/telemetry   client.Telemetry (latest sample, history, last acknowledged status)
//	GET /api/v1/events      Server-Sent Events: app, job, telemetry (client.Event)
//	GET /metrics            Prometheus text format (on the web listener: token required)
//	GET /healthz            200 "ok"
//	GET /                   the web UI (package frontend)
//
// Errors are JSON client.Error bodies with the matching HTTP status, for
// unknown routes (404) and wrong methods (405) too.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/caller"
)

// Backend is what the API serves; berthd's agent implements it.
type Backend interface {
	Status(ctx context.Context) client.Status
	Apps(ctx context.Context) ([]client.App, error)
}

// Options configure a Server.
type Options struct {
	// Socket is the unix socket path. Its parent directory is created 0755
	// if missing; a stale socket file is removed; the socket gets mode 0660
	// and group SocketGroup.
	Socket string
	// SocketGroup owns the socket. When the group does not exist, a warning
	// is logged and the socket stays root-only (0660, the daemon's group).
	SocketGroup string
	// WebListen is a loopback host:port for the web UI; "" disables it.
	WebListen string
	// WebTokenFile holds the web listener's token: read if present, else
	// generated (32 random bytes, hex) and written with mode 0600.
	WebTokenFile string
	// Logger receives the server's log lines; nil discards them.
	Logger *slog.Logger
	// EventsHeartbeat is the interval of the SSE heartbeat comment
	// (default 15s).
	EventsHeartbeat time.Duration
	// Version of berthd, reported by /api/v1/status when the backend leaves
	// it empty.
	Version string
	// AdminGroup names the group whose members are admins (see package
	// caller); "" or a missing group: only root is.
	AdminGroup string
	// WebUser is the user (name or uid) that web-listener requests act
	// for. It must not resolve to root; empty means the web listener has
	// no caller, and routes that need one answer 403.
	WebUser string
	// Routes are the features' routes (sessions, catalog...).
	Routes []Routes
	// SessionProxy serves /session/... (berthd's reverse proxy to web
	// sessions, which checks each session's own token).
	SessionProxy http.Handler
}

// Routes are one feature's handlers, each registered under every prefix:
// pattern "GET /session/{id}" with prefixes "/api/v1" and "/skaha/v1"
// serves GET /api/v1/session/{id} and GET /skaha/v1/session/{id}.
type Routes struct {
	Prefixes []string
	Handlers map[string]http.Handler
}

// Server serves the local API. Start it once; Shutdown is idempotent.
type Server struct {
	backend Backend
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler // mux with JSON 404/405 and security headers
	token   string       // web token; "" when the web listener is off
	// streams is cancelled by Shutdown: it ends event streams, even one
	// blocked writing to a client that stopped reading.
	streams     context.Context
	stopStreams context.CancelFunc

	adminGID int
	webUser  *caller.Caller

	mu       sync.Mutex
	started  bool
	done     bool
	shutErr  error
	cancel   context.CancelFunc // cancels the base context of requests
	unixSrv  *http.Server
	webSrv   *http.Server
	webAddr  net.Addr
	wg       sync.WaitGroup
	serveMu  sync.Mutex
	serveErr []error
}

// New validates opts, reads or creates the web token, and builds the routes.
// It does not bind anything; Start does.
func New(b Backend, opts Options) (*Server, error) {
	if b == nil {
		return nil, errors.New("api: no backend")
	}
	if opts.Socket == "" {
		return nil, errors.New("api: no socket path")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{backend: b, opts: opts, log: log.With("component", "api")}
	s.streams, s.stopStreams = context.WithCancel(context.Background())
	if opts.WebListen != "" {
		if err := checkLoopbackListen(opts.WebListen); err != nil {
			return nil, err
		}
		if opts.WebTokenFile == "" {
			return nil, errors.New("api: the web listener needs a token file")
		}
		tok, err := loadOrCreateToken(opts.WebTokenFile)
		if err != nil {
			return nil, err
		}
		s.token = tok
	}
	s.adminGID = -1
	if gid, ok := caller.ResolveGroup(opts.AdminGroup); ok {
		s.adminGID = gid
	} else if opts.AdminGroup != "" {
		s.log.Info("admin group does not exist; only root is an admin", "group", opts.AdminGroup)
	}
	if opts.WebUser != "" {
		uid, gid, err := caller.ResolveUser(opts.WebUser)
		if err != nil {
			return nil, fmt.Errorf("api: web user: %w", err)
		}
		if uid == 0 {
			return nil, fmt.Errorf("api: web user %q is root; sessions never run as root (set sessions.web-user)", opts.WebUser)
		}
		c := caller.Lookup(uid, gid, s.adminGID)
		c.Web = true
		s.webUser = &c
	}
	mux, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.mux = mux
	s.handler = securityHeaders(s.withCaller(false, jsonErrors(mux)))
	return s, nil
}

// Handler returns the routes as the unix socket serves them (no token, no
// Host check), for tests and for in-process forwarding.
func (s *Server) Handler() http.Handler { return s.handler }

// webHandler is what the web listener serves.
func (s *Server) webHandler() http.Handler {
	return securityHeaders(s.webGuard(s.withCaller(true, jsonErrors(s.mux))))
}

// Start binds the unix socket and, if configured, the web listener, then
// serves them in goroutines that Shutdown waits for. Bind errors are
// returned here, so the caller may report readiness once Start returns nil.
// ctx is the parent of every request's context.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return errors.New("api: server already shut down")
	}
	if s.started {
		return errors.New("api: server already started")
	}

	ul, err := s.listenUnix(ctx)
	if err != nil {
		return err
	}
	var wl net.Listener
	if s.opts.WebListen != "" {
		var lc net.ListenConfig
		wl, err = lc.Listen(ctx, "tcp", s.opts.WebListen)
		if err != nil {
			_ = ul.Close() // also unlinks the socket file
			return fmt.Errorf("web UI listener on %s: %w", s.opts.WebListen, err)
		}
	}

	base, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	s.unixSrv = &http.Server{
		Handler:           accessLog(s.log, "unix", s.handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext:       s.peerConnContext,
	}
	s.serve(s.unixSrv, ul)
	s.log.Info("local API listening", "socket", s.opts.Socket)

	if wl != nil {
		s.webAddr = wl.Addr()
		s.webSrv = &http.Server{
			Handler:           accessLog(s.log, "web", s.webHandler()),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          errLog,
			BaseContext:       func(net.Listener) context.Context { return base },
		}
		s.serve(s.webSrv, wl)
		s.log.Info("web UI listening", "addr", wl.Addr().String())
	}
	s.started = true
	return nil
}

// serve runs srv on l in a goroutine owned by s.
func (s *Server) serve(srv *http.Server, l net.Listener) {
	s.wg.Go(func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("local API listener stopped", "addr", l.Addr().String(), "err", err)
			s.serveMu.Lock()
			s.serveErr = append(s.serveErr, fmt.Errorf("serving %s: %w", l.Addr(), err))
			s.serveMu.Unlock()
		}
	})
}

// Shutdown stops accepting connections, waits for in-flight requests until
// ctx ends (then closes them), waits for the serving goroutines, and removes
// the socket file. Calling it again, or before Start, is harmless.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return s.shutErr
	}
	s.done = true
	s.stopStreams()
	if !s.started {
		return nil
	}
	var errs []error
	for _, srv := range []*http.Server{s.unixSrv, s.webSrv} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("api shutdown: %w", err))
			_ = srv.Close()
		}
	}
	s.cancel()
	s.wg.Wait()
	if err := removeSocket(s.opts.Socket); err != nil {
		errs = append(errs, err)
	}
	s.serveMu.Lock()
	errs = append(errs, s.serveErr...)
	s.serveMu.Unlock()
	s.shutErr = errors.Join(errs...)
	s.log.Info("local API stopped")
	return s.shutErr
}

// WebURL is the address to open the web UI with, token included
// ("http://127.0.0.1:8484/?token=..."), or "" when the web listener is off
// or not started.
func (s *Server) WebURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.webAddr == nil {
		return ""
	}
	return "http://" + s.webAddr.String() + "/?token=" + s.token
}

// withCaller stores the request's caller (package caller) in its context:
// the unix socket's peer, or the web user on the web listener.
func (s *Server) withCaller(web bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case web:
			r = r.WithContext(context.WithValue(r.Context(), webKey{}, true))
			if s.webUser != nil {
				r = r.WithContext(caller.With(r.Context(), *s.webUser))
			}
		default:
			if p, ok := PeerFromContext(r.Context()); ok {
				r = r.WithContext(caller.With(r.Context(), caller.Lookup(p.UID, p.GID, s.adminGID)))
			}
		}
		next.ServeHTTP(w, r)
	})
}

type webKey struct{}

// FromWeb reports whether a request came in on the web listener (past its
// token check) rather than the unix socket.
func FromWeb(ctx context.Context) bool { v, _ := ctx.Value(webKey{}).(bool); return v }
