package telemetry

import (
	"sync"

	"github.com/berth-edge/berth/daemon/client"
)

// History keeps the last samples in a fixed ring: memory stays bounded
// however long the box runs or stays offline.
type History struct {
	mu   sync.Mutex
	buf  []client.Sample
	next int
	n    int
}

// NewHistory returns a History of size samples (at least 1).
func NewHistory(size int) *History {
	return &History{buf: make([]client.Sample, max(size, 1))}
}

// Add records a sample, dropping the oldest when full.
func (h *History) Add(s client.Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf[h.next] = s
	h.next = (h.next + 1) % len(h.buf)
	h.n = min(h.n+1, len(h.buf))
}

// Samples returns the recorded samples, oldest first.
func (h *History) Samples() []client.Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]client.Sample, 0, h.n)
	start := (h.next - h.n + len(h.buf)) % len(h.buf)
	for i := range h.n {
		out = append(out, h.buf[(start+i)%len(h.buf)])
	}
	return out
}

// Latest returns the newest sample, if any.
func (h *History) Latest() (client.Sample, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return client.Sample{}, false
	}
	return h.buf[(h.next-1+len(h.buf))%len(h.buf)], true
}
