// Package events fans berthd's events (app, job, telemetry) out to the
// local API's Server-Sent Events clients.
//
// Publishing never blocks: each subscriber has a bounded buffer, and a
// subscriber whose buffer is full is dropped (its channel closed, Dropped
// set) rather than slowing the daemon down. An event is encoded once,
// whatever the number of subscribers.
package events

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// Event types.
const (
	TypeApp       = "app"
	TypeJob       = "job"
	TypeTelemetry = "telemetry"
	// TypeSession and TypePull concern one user's session: they carry
	// an owner, and only that user (or an admin) receives them.
	TypeSession = "session"
	TypePull    = "pull"
	// TypeCatalog says the catalog of launchable images changed.
	TypeCatalog = "catalog"
)

// DefaultBuffer is a subscriber's buffer unless Subscribe is told otherwise.
const DefaultBuffer = 64

// Message is one encoded event.
type Message struct {
	Type string
	// Data is the JSON of client.Event{Type, Time, Data}.
	Data []byte
	// Owner is the uid (decimal) whose event this is; "" for events every
	// API client may see.
	Owner string
}

// Hub distributes events. The zero value is ready to use.
type Hub struct {
	mu   sync.Mutex
	subs map[*Sub]struct{}
	// dropped counts subscribers dropped for being too slow.
	dropped atomic.Int64
}

// Sub is one subscriber.
type Sub struct {
	// C receives the events; it is closed when the subscriber is dropped.
	C       chan Message
	dropped atomic.Bool
}

// Dropped reports whether the hub dropped this subscriber for being slow.
func (s *Sub) Dropped() bool { return s.dropped.Load() }

// Subscribe adds a subscriber with a buffer of buf events (DefaultBuffer
// if buf <= 0).
func (h *Hub) Subscribe(buf int) *Sub {
	if buf <= 0 {
		buf = DefaultBuffer
	}
	s := &Sub{C: make(chan Message, buf)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*Sub]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Unsubscribe removes a subscriber; calling it twice, or after the hub
// dropped it, is harmless.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.C)
	}
}

// Subscribers returns the number of current subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// DroppedTotal returns how many subscribers were dropped for being slow.
func (h *Hub) DroppedTotal() int64 { return h.dropped.Load() }

// Publish sends an event of type typ with data to every subscriber,
// without blocking.
func (h *Hub) Publish(typ string, data any) { h.PublishFor("", typ, data) }

// PublishFor is Publish for an event that only owner (a uid in decimal)
// and admins may see; the API filters by Message.Owner.
func (h *Hub) PublishFor(owner, typ string, data any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		return
	}
	b, err := json.Marshal(struct {
		Type string    `json:"type"`
		Time time.Time `json:"time"`
		Data any       `json:"data"`
	}{typ, time.Now().UTC(), data})
	if err != nil {
		return
	}
	m := Message{Type: typ, Data: b, Owner: owner}
	for s := range h.subs {
		select {
		case s.C <- m:
		default:
			delete(h.subs, s)
			s.dropped.Store(true)
			close(s.C)
			h.dropped.Add(1)
		}
	}
}
