// Package logring keeps berthd's recent log lines in memory, so that a
// fetch_nuvlabox_log job can send them to the control plane without
// reading the journal. The ring is bounded in lines and in bytes per line;
// the oldest lines are dropped first.
package logring

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// DefaultSize is the number of lines berthd keeps.
const DefaultSize = 2000

// maxLine bounds one stored line.
const maxLine = 4096

// Entry is one log line and when it was written.
type Entry struct {
	Time time.Time
	Line string
}

// Ring is a bounded, concurrency-safe buffer of recent log lines.
type Ring struct {
	mu    sync.Mutex
	buf   []Entry
	next  int
	count int
}

// New returns a ring keeping the last size lines (DefaultSize if size <= 0).
func New(size int) *Ring {
	if size <= 0 {
		size = DefaultSize
	}
	return &Ring{buf: make([]Entry, size)}
}

// Add stores one line, dropping the oldest when full.
func (r *Ring) Add(t time.Time, line string) {
	line = strings.TrimRight(line, "\n")
	if len(line) > maxLine {
		line = line[:maxLine] + "…"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = Entry{Time: t, Line: line}
	r.next = (r.next + 1) % len(r.buf)
	if r.count < len(r.buf) {
		r.count++
	}
}

// Since returns, oldest first, the last max lines (all when max <= 0)
// written after since (all when since is zero).
func (r *Ring) Since(since time.Time, max int) []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Entry, 0, r.count)
	start := (r.next - r.count + len(r.buf)) % len(r.buf)
	for i := 0; i < r.count; i++ {
		e := r.buf[(start+i)%len(r.buf)]
		if since.IsZero() || e.Time.After(since) {
			out = append(out, e)
		}
	}
	if max > 0 && len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// Handler returns a handler that passes every record to inner and keeps a
// copy of what inner accepts in the ring, formatted as slog's text lines
// without the time (kept in the Entry).
func (r *Ring) Handler(inner slog.Handler) slog.Handler {
	text := slog.NewTextHandler(ringWriter{r}, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	return &tee{inner: inner, ring: text}
}

// ringWriter receives exactly one Write per record from the text handler.
type ringWriter struct{ r *Ring }

func (w ringWriter) Write(p []byte) (int, error) {
	w.r.Add(time.Now().UTC(), string(p))
	return len(p), nil
}

type tee struct {
	inner slog.Handler
	ring  slog.Handler
}

func (t *tee) Enabled(ctx context.Context, l slog.Level) bool { return t.inner.Enabled(ctx, l) }

func (t *tee) Handle(ctx context.Context, rec slog.Record) error {
	_ = t.ring.Handle(ctx, rec.Clone())
	return t.inner.Handle(ctx, rec)
}

func (t *tee) WithAttrs(as []slog.Attr) slog.Handler {
	return &tee{inner: t.inner.WithAttrs(as), ring: t.ring.WithAttrs(as)}
}

func (t *tee) WithGroup(name string) slog.Handler {
	return &tee{inner: t.inner.WithGroup(name), ring: t.ring.WithGroup(name)}
}
