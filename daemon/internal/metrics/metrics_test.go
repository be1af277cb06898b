package metrics

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berth-edge/berth/daemon/client"
)

func TestScrapeParses(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	sample := client.Sample{
		Time: now.Add(-5 * time.Second), CPU: client.CPU{Cores: 4, Load1: 0.5, Percent: 10}, RAM: client.RAM{Total: 1024, Used: 512},
		Disks: []client.Disk{{Device: "sda1", Capacity: 1 << 30, Used: 1 << 29}},
		Net:   []client.NetStat{{Interface: "eth0", RxBytes: 10, TxBytes: 20}},
		Apps:  map[string]client.AppUsage{"d1": {State: "partial", Containers: 2, Running: 1, CPUPercent: 12.5, MemBytes: 1 << 20}},
	}
	link := &client.Nuvla{Online: true, LastHeartbeat: now.Add(-3 * time.Second)}
	m := New(Sources{
		Latest: func() (client.Sample, bool) { return sample, true },
		Link:   func() *client.Nuvla { return link },
		Now:    func() time.Time { return now },
	})
	m.ObserveJob("start_deployment", "success", 1500*time.Millisecond)
	m.ControlPlaneError("timeout")
	m.TelemetrySent("patch", 400)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	gauge := func(name string, labels map[string]string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
	next:
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if g := mt.GetGauge(); g != nil {
				return g.GetValue()
			}
			if c := mt.GetCounter(); c != nil {
				return c.GetValue()
			}
		}
		t.Fatalf("%s%v not found", name, labels)
		return 0
	}
	if v := gauge("berth_host_memory_used_bytes", nil); v != 512<<20 {
		t.Errorf("memory used = %v", v)
	}
	if v := gauge("berth_app_cpu_percent", map[string]string{"app": "d1"}); v != 12.5 {
		t.Errorf("app cpu = %v", v)
	}
	if v := gauge("berth_app_state", map[string]string{"app": "d1", "state": "partial"}); v != 1 {
		t.Errorf("app state partial = %v", v)
	}
	if v := gauge("berth_agent_last_heartbeat_age_seconds", nil); v != 3 {
		t.Errorf("heartbeat age = %v", v)
	}
	if v := gauge("berth_agent_online", nil); v != 1 {
		t.Errorf("online = %v", v)
	}
	if v := gauge("berth_control_plane_errors_total", map[string]string{"kind": "timeout"}); v != 1 {
		t.Errorf("errors = %v", v)
	}
	h := fams["berth_job_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 1.5 {
		t.Errorf("job histogram = %v", h)
	}
}
