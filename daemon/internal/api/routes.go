package api

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/caller"
	"github.com/berth-edge/berth/daemon/internal/httpjson"
	"github.com/berth-edge/berth/frontend"
)

// routes builds the mux: the API, /healthz, and one route per UI file, so
// that every other path is a JSON 404 and a wrong method a JSON 405.
func (s *Server) routes() (*http.ServeMux, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", s.getStatus)
	mux.HandleFunc("GET /api/v1/apps", s.getApps)
	mux.HandleFunc("GET /api/v1/apps/{id}", s.getApp)
	mux.HandleFunc("GET /api/v1/telemetry", s.getTelemetry)
	mux.HandleFunc("GET /api/v1/events", s.getEvents)
	mux.HandleFunc("GET /metrics", s.getMetrics)
	mux.HandleFunc("POST /api/v1/nuvla", s.postNuvla)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	for _, rs := range s.opts.Routes {
		for pattern, h := range rs.Handlers {
			method, rest, ok := strings.Cut(pattern, " ")
			if !ok || !strings.HasPrefix(rest, "/") {
				return nil, fmt.Errorf("api: route %q is not \"METHOD /path\"", pattern)
			}
			for _, prefix := range rs.Prefixes {
				mux.Handle(method+" "+prefix+rest, h)
			}
		}
	}
	if s.opts.SessionProxy != nil {
		mux.Handle("/session/", s.opts.SessionProxy)
	}
	if err := addStatic(mux, frontend.FS()); err != nil {
		return nil, err
	}
	return mux, nil
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	st := s.backend.Status(r.Context())
	if st.Version == "" {
		st.Version = s.opts.Version
	}
	if st.Jobs == nil {
		st.Jobs = []client.Job{}
	}
	if st.Apps == nil {
		st.Apps = map[string]int{}
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) getApps(w http.ResponseWriter, r *http.Request) {
	apps, ok := s.apps(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, apps)
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	apps, ok := s.apps(w, r)
	if !ok {
		return
	}
	i := slices.IndexFunc(apps, func(a client.App) bool { return a.ID == id })
	if i < 0 {
		writeError(w, http.StatusNotFound, "no app "+id)
		return
	}
	writeJSON(w, http.StatusOK, apps[i])
}

// apps asks the backend, normalises the answer (arrays never null, a stable
// order) or writes the error answer.
func (s *Server) apps(w http.ResponseWriter, r *http.Request) ([]client.App, bool) {
	apps, err := s.backend.Apps(r.Context())
	if err != nil {
		s.log.Warn("listing apps failed", "err", err)
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("listing apps: %v", err))
		return nil, false
	}
	// A user's sessions are theirs: others (but admins) do not see them.
	c, known := caller.FromContext(r.Context())
	apps = slices.DeleteFunc(apps, func(a client.App) bool {
		return a.Owner != "" && !(known && (c.Admin || c.Owner() == a.Owner))
	})
	if apps == nil {
		apps = []client.App{}
	}
	for i := range apps {
		if apps[i].Services == nil {
			apps[i].Services = []client.Service{}
		}
	}
	slices.SortStableFunc(apps, func(a, b client.App) int {
		return cmp.Or(
			cmp.Compare(strings.ToLower(cmp.Or(a.Name, a.ID)), strings.ToLower(cmp.Or(b.Name, b.ID))),
			cmp.Compare(a.ID, b.ID))
	})
	return apps, true
}

// Activator links a standalone berthd to a control plane.
type Activator interface {
	Activate(ctx context.Context, act client.Activation) (client.Status, error)
}

// postNuvla asks a standalone box to join a control plane. It is for the
// box's administrators: root and the admin group on the socket, and the
// web listener (whose token only the daemon's own user can read).
func (s *Server) postNuvla(w http.ResponseWriter, r *http.Request) {
	ab, ok := s.backend.(Activator)
	if !ok {
		writeError(w, http.StatusNotFound, "activation is not available")
		return
	}
	c, known := caller.FromContext(r.Context())
	if !FromWeb(r.Context()) && (!known || !c.Admin) {
		writeError(w, http.StatusForbidden, "only root or members of the admin group may link this box to a control plane")
		return
	}
	var act client.Activation
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&act); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be JSON {\"endpoint\": \"https://...\", \"nuvlabox-id\": \"nuvlabox/<uuid>\", \"insecure\": false}: "+err.Error())
		return
	}
	st, err := ab.Activate(r.Context(), act)
	if err != nil {
		code := http.StatusInternalServerError
		if sc, ok := errors.AsType[interface {
			error
			StatusCode() int
		}](err); ok {
			code = sc.StatusCode()
		}
		writeError(w, code, err.Error())
		return
	}
	s.log.Info("box linked to a control plane from the local API", "endpoint", act.Endpoint, "nuvlabox", act.NuvlaboxID)
	writeJSON(w, http.StatusAccepted, st)
}

// writeJSON writes v as the JSON body of an answer with code.
func writeJSON(w http.ResponseWriter, code int, v any) { httpjson.Write(w, code, v) }

// writeError writes a client.Error answer.
func writeError(w http.ResponseWriter, code int, msg string) { httpjson.Error(w, code, msg) }

// jsonErrors answers the mux's own 404 and 405 with JSON bodies. The mux
// reports them as a match with an empty pattern; redirects (path cleaning)
// keep a pattern and pass through.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &codeProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.code {
		case http.StatusMethodNotAllowed:
			if allow := probe.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeError(w, http.StatusMethodNotAllowed,
				fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, probe.header.Get("Allow")))
		default:
			writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
		}
	})
}

// codeProbe records the status code a handler writes and discards the body.
type codeProbe struct {
	header http.Header
	code   int
}

func (p *codeProbe) Header() http.Header { return p.header }
func (p *codeProbe) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}
func (p *codeProbe) Write(b []byte) (int, error) {
	if p.code == 0 {
		p.code = http.StatusOK
	}
	return len(b), nil
}

// securityHeaders sets the headers that keep the UI from being framed,
// sniffed, leaking referrers or loading anything from elsewhere. Web
// sessions are the apps' own pages: their security policy is the app's.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/session/") {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// addStatic registers one GET route per file of the UI; index.html is
// served at "/".
func addStatic(mux *http.ServeMux, fsys fs.FS) error {
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("web UI files: %w", err)
		}
		if d.IsDir() {
			return nil
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("web UI file %s: %w", name, err)
		}
		sum := sha256.Sum256(data)
		f := staticFile{name: path.Base(name), data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		route := "/" + name
		if name == "index.html" {
			route = "/{$}"
		}
		mux.Handle("GET "+route, f)
		return nil
	})
}

// staticFile is one embedded UI file.
type staticFile struct {
	name string
	data []byte
	etag string
}

func (f staticFile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("ETag", f.etag)
	// Revalidate every time, so an upgraded berthd serves its new UI.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}

// accessLog logs each request at debug level.
func accessLog(log *slog.Logger, listener string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		attrs := []any{"listener", listener, "method", r.Method, "path", r.URL.Path,
			"status", sw.code, "took", time.Since(start)}
		if p, ok := PeerFromContext(r.Context()); ok {
			attrs = append(attrs, "uid", p.UID)
		}
		log.Debug("request", attrs...)
	})
}

// statusWriter remembers the status code; Unwrap keeps Flush and friends
// reachable through http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
