package api

import (
	"context"
	"fmt"
	"github.com/berth-edge/berth/daemon/internal/caller"
	"net/http"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/events"
)

// Optional parts of a Backend. A backend that lacks one answers its route
// with 404, so small backends (tests, tools) need not implement them.

// TelemetryBackend serves GET /api/v1/telemetry.
// With fresh, the backend samples now unless its latest sample is recent.
type TelemetryBackend interface {
	Telemetry(ctx context.Context, fresh bool) (client.Telemetry, error)
}

// EventsBackend serves GET /api/v1/events.
type EventsBackend interface {
	Events() *events.Hub
}

// MetricsBackend serves GET /metrics.
type MetricsBackend interface {
	Metrics() http.Handler
}

// SSE tuning.
const (
	// eventsBuffer bounds what one slow client may have pending; past it
	// the client is dropped.
	eventsBuffer = 64
	// eventsWriteTimeout bounds one write to a client.
	eventsWriteTimeout = 10 * time.Second
)

func (s *Server) getTelemetry(w http.ResponseWriter, r *http.Request) {
	tb, ok := s.backend.(TelemetryBackend)
	if !ok {
		writeError(w, http.StatusNotFound, "telemetry is not available")
		return
	}
	fresh := r.URL.Query().Get("fresh")
	t, err := tb.Telemetry(r.Context(), fresh == "1" || fresh == "true")
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("telemetry: %v", err))
		return
	}
	if t.History == nil {
		t.History = []client.Sample{}
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request) {
	mb, ok := s.backend.(MetricsBackend)
	if !ok || mb.Metrics() == nil {
		writeError(w, http.StatusNotFound, "metrics are not available")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	mb.Metrics().ServeHTTP(w, r)
}

// getEvents streams events as Server-Sent Events ("event: <type>" and
// "data: <client.Event JSON>"), with a heartbeat comment every
// EventsHeartbeat. A client that falls behind by more than eventsBuffer
// events gets an "event: dropped" and is disconnected; the stream also ends
// when the client goes away or berthd shuts down.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	eb, ok := s.backend.(EventsBackend)
	if !ok || eb.Events() == nil {
		writeError(w, http.StatusNotFound, "events are not available")
		return
	}
	hub := eb.Events()
	rc := http.NewResponseController(w)
	sub := hub.Subscribe(eventsBuffer)
	defer hub.Unsubscribe(sub)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(format string, args ...any) bool {
		if s.streams.Err() != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(eventsWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// On shutdown, unblock a write stuck on a client that stopped reading.
	stop := context.AfterFunc(s.streams, func() { _ = rc.SetWriteDeadline(time.Now()) })
	defer stop()
	if !write(": berthd events\nretry: 3000\n\n") {
		return
	}
	hb := s.opts.EventsHeartbeat
	if hb <= 0 {
		hb = 15 * time.Second
	}
	t := time.NewTicker(hb)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.streams.Done():
			return
		case <-t.C:
			if !write(": heartbeat\n\n") {
				return
			}
		case m, ok := <-sub.C:
			if !ok {
				if sub.Dropped() {
					write("event: dropped\ndata: {\"message\":\"client too slow; reconnect\"}\n\n")
				}
				return
			}
			if m.Owner != "" && !maySee(r, m.Owner) {
				continue
			}
			if !write("event: %s\ndata: %s\n\n", m.Type, m.Data) {
				return
			}
		}
	}
}

// maySee reports whether the request's caller may receive an event owned
// by owner (a uid in decimal): the owner and admins may.
func maySee(r *http.Request, owner string) bool {
	c, ok := caller.FromContext(r.Context())
	return ok && (c.Admin || c.Owner() == owner)
}
