// Package logging builds berthd's logger: log/slog text lines on stderr,
// each prefixed with its syslog priority ("<3>" for errors...) when stderr
// is connected to the systemd journal, so `journalctl -p warning` works.
package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Parse turns a level name (debug, info, warn, error) into a slog level.
func Parse(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("log level %q is not debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a logger writing to w at level. With journal set, every line
// carries its syslog priority prefix.
func New(w io.Writer, level slog.Level, journal bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if !journal {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	// The journal adds its own timestamps.
	opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	return slog.New(&journalHandler{w: w, opts: opts, mu: &sync.Mutex{}})
}

// StderrIsJournal reports whether stderr is the systemd journal: systemd sets
// JOURNAL_STREAM to "<device>:<inode>" of the stream it connected.
func StderrIsJournal() bool {
	js := os.Getenv("JOURNAL_STREAM")
	if js == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(os.Stderr.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// journalHandler formats each record with a text handler into a buffer and
// writes it with the priority prefix in one write.
type journalHandler struct {
	w     io.Writer
	opts  *slog.HandlerOptions
	mu    *sync.Mutex
	attrs []slog.Attr
	group string
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.opts.Level.Level()
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	var buf bytes.Buffer
	buf.WriteString(priority(r.Level))
	var th slog.Handler = slog.NewTextHandler(&buf, h.opts)
	if len(h.attrs) > 0 {
		th = th.WithAttrs(h.attrs)
	}
	if h.group != "" {
		th = th.WithGroup(h.group)
	}
	if err := th.Handle(ctx, r); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf.Bytes())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	default:
		return "<7>"
	}
}
