package uie2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/frontend"
)

// appsServer serves the real UI files and an /api/v1 that lists n apps
// and n sessions; every listing changes the state of a tenth of them, as
// a busy box would. It isolates the page's own work (fetch, decode, DOM
// update) from berthd's, which the daemon's benchmarks measure.
func appsServer(n int) *httptest.Server {
	var gen atomic.Int64
	created := time.Now().Add(-2 * time.Hour).UTC()
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(frontend.FS()))
	write := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /api/v1/apps", func(w http.ResponseWriter, r *http.Request) {
		g := gen.Add(1)
		apps := make([]client.App, n)
		for i := range apps {
			state := "running"
			if (int64(i)+g)%10 == 0 {
				state = "partial"
			}
			apps[i] = client.App{ID: fmt.Sprintf("5f3c%04d-deploy", i), Name: fmt.Sprintf("grafana-%03d", i), Kind: "nuvla-component",
				Source: "nuvla", Desired: "running", State: state, Created: created,
				URLs:     map[string]string{"main": fmt.Sprintf("http://127.0.0.1:%d/", 30000+i)},
				Services: []client.Service{{Name: "grafana", Image: "grafana/grafana:11", State: state}}}
		}
		write(w, apps)
	})
	mux.HandleFunc("GET /api/v1/session", func(w http.ResponseWriter, r *http.Request) {
		g := gen.Load()
		ss := make([]client.Session, n)
		for i := range ss {
			status := client.StatusRunning
			if (int64(i)+g)%10 == 5 {
				status = client.StatusPending
			}
			id := fmt.Sprintf("s%07d", i)
			ss[i] = client.Session{ID: id, Name: fmt.Sprintf("notebook-%d", i), Type: client.TypeNotebook, Status: status,
				Image: "images.example/skaha/notebook:1.2", UserID: "alice", StartTime: created.Format(time.RFC3339),
				ConnectURL:    "http://127.0.0.1:8484/session/notebook/" + id + "/lab?token=" + id,
				CPUCoresInUse: fmt.Sprintf("%.3f", float64((int64(i)+g)%7)/10), RAMInUse: fmt.Sprintf("%dM", 100+i)}
		}
		write(w, ss)
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		write(w, client.Status{Version: "bench", Mode: "standalone", State: "standalone", Jobs: []client.Job{}})
	})
	mux.HandleFunc("GET /api/v1/telemetry", func(w http.ResponseWriter, r *http.Request) {
		write(w, client.Telemetry{History: []client.Sample{}})
	})
	return httptest.NewServer(mux)
}

// BenchmarkAppsView100 measures the Apps view in headless Chromium with
// 100 Nuvla apps and 100 sessions (200 rows), a tenth of which change
// state at every refresh: ms-update is the DOM update of one refresh
// (keyed rows: only changed cells are written), ms-refresh the whole
// refresh (both fetches, JSON decoding and the update), ms-first-paint the
// first render that creates the 200 rows.
func BenchmarkAppsView100(b *testing.B) {
	skipShort(b)
	ctx := browser(b)
	srv := appsServer(100)
	b.Cleanup(srv.Close)
	p := open(b, ctx, srv.URL, "none", "apps")
	p.waitJS("200 rows", `document.querySelectorAll("#apps-body tr").length === 200`, 30*time.Second)
	first := eval[float64](p, `performance.getEntriesByName("berth-apps-render")[0].duration`)

	var update, refresh []float64
	for b.Loop() {
		r := eval[[]float64](p, `(async () => {
			const t0 = performance.now();
			await window.berth.refresh();
			const t1 = performance.now();
			const m = performance.getEntriesByName("berth-apps-render");
			return [m[m.length - 1].duration, t1 - t0];
		})()`)
		update = append(update, r[0])
		refresh = append(refresh, r[1])
	}
	if rows := eval[float64](p, `document.querySelectorAll("#apps-body tr").length`); rows != 200 {
		b.Fatalf("%v rows after the updates, want 200", rows)
	}
	b.ReportMetric(median(update), "ms-update")
	b.ReportMetric(median(refresh), "ms-refresh")
	b.ReportMetric(first, "ms-first-paint")
	b.ReportMetric(0, "ns/op")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
