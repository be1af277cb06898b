package api

import (
	"bufio"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/events"
)

// obsBackend adds telemetry, events and metrics to the fake backend.
type obsBackend struct {
	*fakeBackend
	hub *events.Hub
}

func (b *obsBackend) Telemetry(context.Context, bool) (client.Telemetry, error) {
	return client.Telemetry{Latest: &client.Sample{Time: t0}, Acknowledged: map[string]any{"status": "OPERATIONAL"}}, nil
}
func (b *obsBackend) Events() *events.Hub { return b.hub }
func (b *obsBackend) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("berth_test 1\n"))
	})
}

func TestEventStream(t *testing.T) {
	b := &obsBackend{fakeBackend: sampleBackend(), hub: &events.Hub{}}
	ts := start(t, b, false, func(o *Options) { o.EventsHeartbeat = 50 * time.Millisecond })
	c := socketHTTP(t, ts.socket)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://berthd/api/v1/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(resp.Body)
	waitLine := func(want string) string {
		t.Helper()
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended waiting for %q: %v", want, err)
			}
			if strings.HasPrefix(l, want) {
				return l
			}
		}
	}
	waitLine(": heartbeat")
	for b.hub.Subscribers() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	b.hub.Publish(events.TypeApp, client.AppEvent{ID: "d1"})
	waitLine("event: app")
	if l := waitLine("data: "); !strings.Contains(l, `"id":"d1"`) || !strings.Contains(l, `"type":"app"`) {
		t.Fatalf("data line %q", l)
	}
	// The client goes away: its subscription ends.
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for b.hub.Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("subscription not released after the client left")
		}
		b.hub.Publish(events.TypeTelemetry, nil) // a write notices the gone client
		time.Sleep(20 * time.Millisecond)
	}

	// A client that never reads is dropped, and publishing never blocks.
	req, _ = http.NewRequest(http.MethodGet, "http://berthd/api/v1/events", nil)
	slow, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	for b.hub.Subscribers() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	big := strings.Repeat("x", 64<<10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			b.hub.Publish(events.TypeTelemetry, big)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publishing blocked on a slow client")
	}
	if b.hub.DroppedTotal() == 0 {
		t.Fatal("the slow client was not dropped")
	}

	// Shutdown ends open streams rather than waiting for them.
	req, _ = http.NewRequest(http.MethodGet, "http://berthd/api/v1/events", nil)
	open, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Body.Close()
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	began := time.Now()
	if err := ts.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v", err)
	}
	if time.Since(began) > 2*time.Second {
		t.Fatalf("shutdown waited %s for the stream", time.Since(began))
	}
}

func TestTelemetryAndMetricsRoutes(t *testing.T) {
	b := &obsBackend{fakeBackend: sampleBackend(), hub: &events.Hub{}}
	ts := start(t, b, true, nil)
	c := socketHTTP(t, ts.socket)
	resp, body := do(t, c, "GET", "http://berthd/api/v1/telemetry", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"acknowledged":{"status":"OPERATIONAL"}`) || !strings.Contains(string(body), `"history":[]`) {
		t.Fatalf("telemetry: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, c, "GET", "http://berthd/metrics", nil)
	if resp.StatusCode != 200 || string(body) != "berth_test 1\n" {
		t.Fatalf("metrics on the socket: %d %s", resp.StatusCode, body)
	}
	// On the web listener /metrics needs the token.
	m := regexp.MustCompile(`^http://(127\.0\.0\.1:\d+)/\?token=([0-9a-f]{64})$`).FindStringSubmatch(ts.WebURL())
	web := &http.Client{}
	if resp, _ := do(t, web, "GET", "http://"+m[1]+"/metrics", nil); resp.StatusCode != 401 {
		t.Fatalf("metrics without a token: %d", resp.StatusCode)
	}
	if resp, body := do(t, web, "GET", "http://"+m[1]+"/metrics", map[string]string{"Authorization": "Bearer " + m[2]}); resp.StatusCode != 200 || string(body) != "berth_test 1\n" {
		t.Fatalf("metrics with the token: %d %s", resp.StatusCode, body)
	}

	// A backend without them answers 404.
	plain := start(t, sampleBackend(), false, nil)
	pc := socketHTTP(t, plain.socket)
	for _, p := range []string{"/api/v1/telemetry", "/api/v1/events", "/metrics"} {
		if resp, _ := do(t, pc, "GET", "http://berthd"+p, nil); resp.StatusCode != 404 {
			t.Errorf("%s without support: %d", p, resp.StatusCode)
		}
	}
}
