package nuvlatest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Addr is the address to listen on, default "127.0.0.1:0". Wildcard
	// addresses (0.0.0.0, ::, empty host) are refused.
	Addr string
	// Logger receives debug logs of every request; nil discards them.
	Logger *slog.Logger
	// RefreshInterval and HeartbeatInterval (seconds) are given to every
	// nuvlabox created with CreateNuvlabox; defaults 60 and 20. Small values
	// such as 1 are accepted.
	RefreshInterval, HeartbeatInterval int
	// NoDeploymentStateJobs turns off the deployment_state jobs the real
	// server creates on status edits without coe-resources.docker.
	NoDeploymentStateJobs bool
	// OfflineCheckInterval is how often boxes whose next-heartbeat has
	// passed are set offline; default 1s.
	OfflineCheckInterval time.Duration
}

// Server is the fake control plane. Create it with New, stop it with Close.
type Server struct {
	log      *slog.Logger
	opts     Options
	ln       net.Listener
	http     *http.Server
	url      string
	closing  chan struct{}
	closeOne sync.Once
	loops    sync.WaitGroup // serve and offline goroutines
	inflight sync.WaitGroup // handlers

	mu       sync.Mutex
	closed   bool
	st       *store
	tokens   map[string]string // cookie token -> session id
	history  map[string][]map[string]any
	requests []Request
	fault    Fault
	changed  chan struct{} // closed and replaced on every change
}

// Request is one HTTP call the server answered.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Status   int    // 0 when no response was written (blackholed)
	Body     string // request body, gunzipped
	// ContentType and ContentEncoding are the request's headers.
	ContentType     string
	ContentEncoding string
	// Identity is the authenticated active claim ("nuvlabox/U",
	// "deployment/D", ...), "" if anonymous.
	Identity string
	// Received is when the request arrived; Done when it was answered.
	Received, Done time.Time
}

// Fault makes /api requests fail, for tests of error handling.
type Fault struct {
	// Status, if non-zero, is answered to every matching request with a
	// JSON error body.
	Status int
	// Blackhole makes matching requests hang until the client gives up or
	// the server closes.
	Blackhole bool
	// Path, if set, limits the fault to request paths containing it.
	Path string
	// Times, if positive, clears the fault after that many requests.
	Times int
}

// New starts a server listening on opts.Addr.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if err := checkAddr(opts.Addr); err != nil {
		return nil, err
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = 60
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 20
	}
	if opts.OfflineCheckInterval <= 0 {
		opts.OfflineCheckInterval = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("nuvlatest: listen %s: %w", opts.Addr, err)
	}
	s := &Server{
		log:     log,
		opts:    opts,
		ln:      ln,
		url:     "http://" + ln.Addr().String(),
		closing: make(chan struct{}),
		st:      newStore(),
		tokens:  map[string]string{},
		history: map[string][]map[string]any{},
		changed: make(chan struct{}),
	}
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.loops.Add(2)
	go func() {
		defer s.loops.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("nuvlatest: serve", "err", err)
		}
	}()
	go func() {
		defer s.loops.Done()
		s.offlineLoop()
	}()
	return s, nil
}

// checkAddr refuses to listen on all interfaces.
func checkAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("nuvlatest: address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("nuvlatest: address %q has no host; refusing to listen on all interfaces", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("nuvlatest: refusing to listen on the wildcard address %s", host)
	}
	return nil
}

// URL is the base URL, "http://host:port", without /api.
func (s *Server) URL() string { return s.url }

// Close stops the server and waits for its goroutines and handlers. It is
// safe to call more than once.
func (s *Server) Close() {
	s.closeOne.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
		if err := s.http.Close(); err != nil {
			s.log.Debug("nuvlatest: close", "err", err)
		}
		s.loops.Wait()
		s.inflight.Wait()
	})
}

// SetFault injects a fault into subsequent /api requests; Fault{} clears it.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Requests returns a copy of the log of every HTTP request answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// bump wakes up everyone waiting for a change. Called with mu held.
func (s *Server) bump() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) now() time.Time { return time.Now().UTC() }

// statusWriter records the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()

	received := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	body, berr := readBody(r)
	rec := Request{
		Received:        received,
		Method:          r.Method,
		Path:            r.URL.Path,
		RawQuery:        r.URL.RawQuery,
		Body:            string(body),
		ContentType:     r.Header.Get("Content-Type"),
		ContentEncoding: r.Header.Get("Content-Encoding"),
	}
	defer func() {
		rec.Status = sw.status
		rec.Done = time.Now()
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		s.log.Debug("nuvlatest", "method", rec.Method, "path", rec.Path, "status", rec.Status, "identity", rec.Identity)
	}()

	if f, ok := s.takeFault(r); ok {
		if f.Blackhole {
			select {
			case <-r.Context().Done():
			case <-s.closing:
			}
			return
		}
		writeJSON(sw, f.Status, newError(f.Status, "", "injected fault"))
		return
	}
	if berr != nil {
		writeError(sw, berr)
		return
	}
	s.mu.Lock()
	who := s.authenticate(r)
	rec.Identity = who.identity()
	rep, err := s.route(&call{r: r, who: who, body: body})
	s.mu.Unlock()
	if err != nil {
		writeError(sw, err)
		return
	}
	rep.write(sw)
}

// takeFault returns the fault that applies to r, counting it down.
func (s *Server) takeFault(r *http.Request) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	if f.Status == 0 && !f.Blackhole {
		return f, false
	}
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return f, false
	}
	if f.Path != "" && !strings.Contains(r.URL.Path, f.Path) {
		return f, false
	}
	if f.Times > 0 {
		s.fault.Times--
		if s.fault.Times == 0 {
			s.fault = Fault{}
		}
	}
	return f, true
}

// readBody reads the request body, gunzipping it when Content-Encoding
// says gzip.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	const limit = 64 << 20
	var rd io.Reader = io.LimitReader(r.Body, limit)
	if enc := r.Header.Get("Content-Encoding"); enc == "gzip" {
		zr, err := newGzipReader(rd)
		if err != nil {
			return nil, errBadRequest("invalid gzip body: %v", err)
		}
		defer zr.Close()
		rd = io.LimitReader(zr, limit)
	} else if enc != "" && enc != "identity" {
		return nil, newError(http.StatusUnsupportedMediaType, "", "unsupported Content-Encoding "+enc)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, errBadRequest("cannot read body: %v", err)
	}
	return b, nil
}

// WaitJob blocks until the job is SUCCESS, FAILED or CANCELED and returns
// it, or until ctx ends or the server closes.
func (s *Server) WaitJob(ctx context.Context, jobID string) (map[string]any, error) {
	for {
		s.mu.Lock()
		doc, ok := s.st.get(jobID)
		ch := s.changed
		s.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("nuvlatest: wait %s: %w", jobID, errNotFound(jobID))
		}
		if isFinalJobState(str(doc["state"])) {
			return export(doc), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return export(doc), fmt.Errorf("nuvlatest: wait %s (state %s): %w", jobID, str(doc["state"]), ctx.Err())
		case <-s.closing:
			return export(doc), fmt.Errorf("nuvlatest: wait %s: server closed", jobID)
		}
	}
}
