package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestJournalPriorities(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelDebug, true).With("component", "x")
	log.Error("broken", "err", "boom")
	log.Warn("careful")
	log.Info("hello")
	log.Debug("detail")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"<3>", "<4>", "<6>", "<7>"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines: %q", len(lines), buf.String())
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]) || !strings.Contains(l, "component=x") || strings.Contains(l, "time=") {
			t.Errorf("line %d = %q, want prefix %s, the component attribute and no timestamp", i, l, want[i])
		}
	}
}

func TestParse(t *testing.T) {
	if l, err := Parse("warn"); err != nil || l != slog.LevelWarn {
		t.Fatalf("Parse(warn) = %v, %v", l, err)
	}
	if _, err := Parse("loud"); err == nil {
		t.Fatal("Parse accepted loud")
	}
}
