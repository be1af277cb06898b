// Package metrics exposes berthd's Prometheus metrics: host figures and
// per-app usage from the latest telemetry sample, and the agent's own
// health (job durations, control-plane errors, heartbeat age, online).
//
// Host and app metrics are read from the latest sample at scrape time, so
// scraping costs no extra sampling and apps that went away disappear.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-edge/berth/daemon/client"
)

// Sources are where the scrape-time metrics come from; nil funcs are
// skipped.
type Sources struct {
	// Latest returns the latest telemetry sample.
	Latest func() (client.Sample, bool)
	// Link returns the control-plane link (nil when standalone).
	Link func() *client.Nuvla
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Metrics holds the registry and the agent's instruments.
type Metrics struct {
	reg         *prometheus.Registry
	jobDuration *prometheus.HistogramVec
	cpErrors    *prometheus.CounterVec
	telBytes    *prometheus.CounterVec
}

// New builds the registry, with the Go and process collectors.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_job_duration_seconds",
			Help:    "Duration of control-plane jobs, from receipt to final state.",
			Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"action", "result"}),
		cpErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_control_plane_errors_total",
			Help: "Failed exchanges with the control plane, by kind.",
		}, []string{"kind"}),
		telBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_telemetry_sent_bytes_total",
			Help: "Bytes of nuvlabox-status updates sent (before gzip), by form (patch, put).",
		}, []string{"form"}),
	}
	if src.Now == nil {
		src.Now = time.Now
	}
	m.reg.MustRegister(m.jobDuration, m.cpErrors, m.telBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&scrapeCollector{src: src})
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry returns the registry (for tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveJob records a finished job.
func (m *Metrics) ObserveJob(action, result string, d time.Duration) {
	m.jobDuration.WithLabelValues(action, result).Observe(d.Seconds())
}

// ControlPlaneError counts a failed exchange with the control plane.
func (m *Metrics) ControlPlaneError(kind string) { m.cpErrors.WithLabelValues(kind).Inc() }

// TelemetrySent counts the bytes of one status update.
func (m *Metrics) TelemetrySent(form string, n int) { m.telBytes.WithLabelValues(form).Add(float64(n)) }

var (
	dCores    = prometheus.NewDesc("berth_host_cpu_cores", "Number of CPU cores.", nil, nil)
	dLoad     = prometheus.NewDesc("berth_host_load", "Load average.", []string{"period"}, nil)
	dCPU      = prometheus.NewDesc("berth_host_cpu_busy_percent", "Busy share of all cores since the previous sample.", nil, nil)
	dMemTotal = prometheus.NewDesc("berth_host_memory_total_bytes", "Total memory.", nil, nil)
	dMemUsed  = prometheus.NewDesc("berth_host_memory_used_bytes", "Used memory (total minus available).", nil, nil)
	dDiskCap  = prometheus.NewDesc("berth_host_disk_capacity_bytes", "Filesystem size.", []string{"device"}, nil)
	dDiskUsed = prometheus.NewDesc("berth_host_disk_used_bytes", "Filesystem use.", []string{"device"}, nil)
	dNetRx    = prometheus.NewDesc("berth_host_network_receive_bytes_total", "Bytes received.", []string{"interface"}, nil)
	dNetTx    = prometheus.NewDesc("berth_host_network_transmit_bytes_total", "Bytes sent.", []string{"interface"}, nil)
	dTemp     = prometheus.NewDesc("berth_host_temperature_celsius", "Sensor temperature.", []string{"zone"}, nil)
	dAppCPU   = prometheus.NewDesc("berth_app_cpu_percent", "CPU use of an app's containers (100 = one core).", []string{"app"}, nil)
	dAppMem   = prometheus.NewDesc("berth_app_memory_bytes", "Memory use of an app's containers.", []string{"app"}, nil)
	dAppState = prometheus.NewDesc("berth_app_state", "1 for the app's current state (running, partial, stopped).", []string{"app", "state"}, nil)
	dAppCont  = prometheus.NewDesc("berth_app_containers", "An app's containers, by whether they run.", []string{"app", "running"}, nil)
	dOnline   = prometheus.NewDesc("berth_agent_online", "1 when the control plane answers, 0 when offline; absent when standalone.", nil, nil)
	dHBAge    = prometheus.NewDesc("berth_agent_last_heartbeat_age_seconds", "Seconds since the last acknowledged heartbeat.", nil, nil)
	dSample   = prometheus.NewDesc("berth_telemetry_last_sample_age_seconds", "Seconds since the latest telemetry sample.", nil, nil)
)

type scrapeCollector struct{ src Sources }

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dCores, dLoad, dCPU, dMemTotal, dMemUsed, dDiskCap, dDiskUsed, dNetRx, dNetTx,
		dTemp, dAppCPU, dAppMem, dAppState, dAppCont, dOnline, dHBAge, dSample} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.src.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if c.src.Latest != nil {
		if s, ok := c.src.Latest(); ok {
			gauge(dSample, now.Sub(s.Time).Seconds())
			gauge(dCores, float64(s.CPU.Cores))
			gauge(dLoad, s.CPU.Load1, "1m")
			gauge(dLoad, s.CPU.Load5, "5m")
			gauge(dLoad, s.CPU.Load15, "15m")
			gauge(dCPU, s.CPU.Percent)
			gauge(dMemTotal, float64(s.RAM.Total)*(1<<20))
			gauge(dMemUsed, float64(s.RAM.Used)*(1<<20))
			seen := map[string]bool{}
			for _, d := range s.Disks {
				if seen[d.Device] {
					continue
				}
				seen[d.Device] = true
				gauge(dDiskCap, float64(d.Capacity), d.Device)
				gauge(dDiskUsed, float64(d.Used), d.Device)
			}
			for _, n := range s.Net {
				counter(dNetRx, float64(n.RxBytes), n.Interface)
				counter(dNetTx, float64(n.TxBytes), n.Interface)
			}
			seen = map[string]bool{}
			for _, t := range s.Temperatures {
				if !seen[t.Zone] {
					seen[t.Zone] = true
					gauge(dTemp, t.Value, t.Zone)
				}
			}
			for id, a := range s.Apps {
				gauge(dAppCPU, a.CPUPercent, id)
				gauge(dAppMem, float64(a.MemBytes), id)
				for _, st := range []string{"running", "partial", "stopped"} {
					v := 0.0
					if a.State == st {
						v = 1
					}
					gauge(dAppState, v, id, st)
				}
				gauge(dAppCont, float64(a.Running), id, "true")
				gauge(dAppCont, float64(a.Containers-a.Running), id, "false")
			}
		}
	}
	if c.src.Link != nil {
		if l := c.src.Link(); l != nil {
			v := 0.0
			if l.Online {
				v = 1
			}
			gauge(dOnline, v)
			if !l.LastHeartbeat.IsZero() {
				gauge(dHBAge, now.Sub(l.LastHeartbeat).Seconds())
			}
		}
	}
}
