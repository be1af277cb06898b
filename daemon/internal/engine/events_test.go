package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// fakeDocker answers /_ping and /events like dockerd: the first events
// stream sends a burst of events and then breaks; later streams send one
// event each and stay open.
type fakeDocker struct {
	mu     sync.Mutex
	since  []string
	burst  int
	filter []string
}

func (f *fakeDocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.41")
	switch {
	case strings.HasSuffix(r.URL.Path, "/_ping"):
		_, _ = w.Write([]byte("OK"))
	case strings.HasSuffix(r.URL.Path, "/events"):
		f.mu.Lock()
		n := len(f.since)
		f.since = append(f.since, r.URL.Query().Get("since"))
		f.filter = append(f.filter, r.URL.Query().Get("filters"))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		msg := func(i int, action string) map[string]any {
			return map[string]any{
				"Type": "container", "Action": action,
				"Actor":    map[string]any{"ID": fmt.Sprintf("c%d", i), "Attributes": map[string]string{apps.LabelApp: "app1", apps.LabelComposeService: "web"}},
				"time":     time.Now().Unix(),
				"timeNano": time.Now().UnixNano(),
			}
		}
		if n == 0 {
			for i := range f.burst {
				_ = enc.Encode(msg(i, "start"))
			}
			return // the stream breaks
		}
		_ = enc.Encode(msg(100000+n, "die"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	default:
		http.NotFound(w, r)
	}
}

func TestEventsReconnectAndSlowConsumer(t *testing.T) {
	t.Parallel()
	f := &fakeDocker{burst: 3000}
	srv := httptest.NewServer(f)
	defer srv.Close()
	e, err := New(t.Context(), Options{Host: "tcp://" + strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel() // before srv.Close, which waits for the open stream
	evs := e.Events(ctx)

	// Do not read until the burst is over and the stream reconnected: the
	// engine must keep reading Docker's stream meanwhile.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.since)
		f.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, sawDie := 0, false
	timeout := time.After(10 * time.Second)
	for !sawDie {
		select {
		case ev := <-evs:
			got++
			if ev.AppID != "app1" || ev.Service != "web" {
				t.Errorf("event %+v", ev)
			}
			sawDie = ev.Action == "die"
		case <-timeout:
			t.Fatalf("no die event after reconnect; got %d events", got)
		}
	}
	if got > eventsMaxPending+eventsBuffer+5 {
		t.Errorf("got %d events, more than the bound", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since[0] == "" || f.since[1] == "" || f.since[1] < f.since[0] {
		t.Errorf("since: %v", f.since)
	}
	if !strings.Contains(f.filter[0], "berth.managed=true") || !strings.Contains(f.filter[0], "container") {
		t.Errorf("filters: %s", f.filter[0])
	}
}
