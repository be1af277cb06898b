package logring

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRingKeepsTheLastLines(t *testing.T) {
	r := New(3)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		r.Add(base.Add(time.Duration(i)*time.Second), fmt.Sprintf("line %d\n", i))
	}
	got := r.Since(time.Time{}, 0)
	if len(got) != 3 || got[0].Line != "line 2" || got[2].Line != "line 4" {
		t.Fatalf("Since(all) = %v", got)
	}
	if got := r.Since(base.Add(3*time.Second), 0); len(got) != 1 || got[0].Line != "line 4" {
		t.Fatalf("Since(3s) = %v", got)
	}
	if got := r.Since(time.Time{}, 2); len(got) != 2 || got[0].Line != "line 3" {
		t.Fatalf("Since(max 2) = %v", got)
	}
	r.Add(base, strings.Repeat("x", 10000))
	if l := r.Since(time.Time{}, 1)[0].Line; len(l) > maxLine+4 {
		t.Fatalf("long line kept whole: %d bytes", len(l))
	}
}

func TestHandlerTees(t *testing.T) {
	r := New(10)
	var out bytes.Buffer
	log := slog.New(r.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	log.Debug("hidden")
	log.With("component", "jobs").WithGroup("g").Info("hello", "k", "v")
	got := r.Since(time.Time{}, 0)
	if len(got) != 1 || got[0].Line != `level=INFO msg=hello component=jobs g.k=v` {
		t.Fatalf("ring = %q", got)
	}
	if !strings.Contains(out.String(), "msg=hello") || strings.Contains(out.String(), "hidden") {
		t.Fatalf("inner = %q", out.String())
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				log.Info("concurrent", "j", j)
			}
		}()
	}
	wg.Wait()
	if n := len(r.Since(time.Time{}, 0)); n != 10 {
		t.Fatalf("ring holds %d lines, want 10", n)
	}
}
