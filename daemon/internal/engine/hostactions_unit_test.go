package engine

import (
	"testing"
	"time"
)

func TestParseLogLines(t *testing.T) {
	in := "-01T00:00:00Z cut\n2026-01-01T00:00:01.5Z one\n2026-01-01T00:00:02Z two words\r\n2026-01-01T00:00:03Z\n"
	got := parseLogLines(in, time.Time{})
	if len(got) != 3 || got[0].Text != "one" || got[1].Text != "two words" || got[2].Text != "" {
		t.Fatalf("lines = %+v", got)
	}
	if !got[0].Time.Equal(time.Date(2026, 1, 1, 0, 0, 1, 5e8, time.UTC)) {
		t.Fatalf("time = %v", got[0].Time)
	}
	got = parseLogLines(in, time.Date(2026, 1, 1, 0, 0, 2, 0, time.UTC))
	if len(got) != 1 || !got[0].Time.Equal(time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC)) {
		t.Fatalf("since: %+v", got)
	}
}
