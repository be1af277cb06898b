package agent

import (
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

func TestBackoffGrowsWithJitterAndCaps(t *testing.T) {
	b := newBackoff(time.Second, 8*time.Second)
	steps := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, step := range steps {
		d := b.next()
		if d < step/2 || d > step {
			t.Fatalf("attempt %d: %s not within [%s, %s]", i, d, step/2, step)
		}
	}
	b.reset()
	if d := b.next(); d > time.Second {
		t.Fatalf("after reset: %s", d)
	}
	// Jitter: a fleet restarting together does not retry together.
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		b := newBackoff(time.Second, time.Minute)
		b.next()
		seen[b.next()] = true
	}
	if len(seen) < 5 {
		t.Fatalf("backoff has no jitter: %v", seen)
	}
}

func TestResolveURLs(t *testing.T) {
	params := map[string]string{"hostname": "10.0.0.5", "tcp.8080": "32768"}
	got := resolveURLs([][2]string{
		{"main", "http://${hostname}:${tcp.8080}/"},
		{"admin", "http://${hostname}:${tcp.9000}/admin"},
		{"static", "https://docs.example/"},
		{"broken", "http://${hostname"},
	}, params)
	want := map[string]string{"main": "http://10.0.0.5:32768/", "static": "https://docs.example/"}
	if len(got) != len(want) {
		t.Fatalf("resolveURLs = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestSummarize(t *testing.T) {
	run := client.Service{State: "running"}
	exit := client.Service{State: "exited"}
	miss := client.Service{State: "missing"}
	for _, tt := range []struct {
		ss   []client.Service
		want string
	}{
		{[]client.Service{run, run}, "running"},
		{[]client.Service{run, exit}, "partial"},
		{[]client.Service{exit, miss}, "stopped"},
		{nil, "missing"},
	} {
		if got := summarize(tt.ss, len(tt.ss)); got != tt.want {
			t.Errorf("summarize(%v) = %s, want %s", tt.ss, got, tt.want)
		}
	}
}

func TestStandaloneState(t *testing.T) {
	a := New(Options{})
	if s, msg := a.State(); s != StateStandalone || msg == "" {
		t.Fatalf("state = %s %q", s, msg)
	}
	if a.Link() != nil || a.Runner() != nil {
		t.Fatal("a standalone agent has a control-plane link")
	}
}
