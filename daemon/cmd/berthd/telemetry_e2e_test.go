package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	bclient "github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/nuvla/nuvlatest"
	"github.com/berth-edge/berth/daemon/internal/telemetry"
)

// labelled creates (and starts, if run) a container that looks like one
// berth manages, without going through a deployment.
func (e *e2e) labelled(appID, service string, run bool) string {
	e.t.Helper()
	ctx := context.Background()
	labels := map[string]string{
		"berth.managed": "true", "berth.app": appID, "berth.kind": "nuvla-component",
		"com.docker.compose.project": appID, "com.docker.compose.service": service,
	}
	name := "berth-tel-" + appID + "-" + service
	c, err := e.docker.ContainerCreate(ctx, &container.Config{Image: e.image, Labels: labels}, nil, nil, nil, name)
	if err != nil {
		e.t.Fatal(err)
	}
	if run {
		if err := e.docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
	return c.ID
}

func randID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusPuts returns the status edits the control plane answered.
func statusPuts(cp *nuvlatest.Server) []nuvlatest.Request {
	var out []nuvlatest.Request
	for _, r := range cp.Requests() {
		if r.Method == http.MethodPut && strings.HasPrefix(r.Path, "/api/nuvlabox-status/") && r.Status != 0 {
			out = append(out, r)
		}
	}
	return out
}

func (e *e2e) statusID() string {
	doc, _ := e.cp.Resource(e.box)
	id, _ := doc["nuvlabox-status"].(string)
	return id
}

// After ten ticks with containers coming and going, the server's copy of
// nuvlabox-status equals berthd's last acknowledged document, every edit
// passed the server's schema, and most were JSON patches.
func TestTelemetrySync(t *testing.T) {
	e := newE2E(t)
	d := e.start()
	e.waitOnline()
	app := "tel-" + randID()
	enginetest.CleanupApp(t, e.docker, app)
	ctx := context.Background()

	start := len(e.cp.StatusHistory(e.box))
	var ids []string
	for tick := 0; len(e.cp.StatusHistory(e.box)) < start+10; tick++ {
		switch tick % 4 {
		case 0:
			ids = append(ids, e.labelled(app, fmt.Sprintf("s%d", tick), true))
		case 1:
			ids = append(ids, e.labelled(app, fmt.Sprintf("s%d", tick), false))
		case 2:
			if len(ids) > 0 {
				_ = e.docker.ContainerStop(ctx, ids[0], container.StopOptions{Timeout: new(int)})
			}
		case 3:
			if len(ids) > 1 {
				_ = e.docker.ContainerRemove(ctx, ids[1], container.RemoveOptions{Force: true})
				ids = append(ids[:1], ids[2:]...)
			}
		}
		if tick > 60 {
			t.Fatalf("only %d status edits in 60 s", len(e.cp.StatusHistory(e.box))-start)
		}
		time.Sleep(time.Second)
	}

	var last bclient.Telemetry
	eventually(t, 15*time.Second, "the server's status to equal berthd's acknowledged document", func() (bool, string) {
		tel, err := d.Client().Telemetry(ctx, false)
		if err != nil {
			return false, err.Error()
		}
		doc, _ := e.cp.Resource(e.statusID())
		server := telemetry.AgentView(doc)
		last = tel
		if tel.Acknowledged == nil {
			return false, "nothing acknowledged"
		}
		if !reflect.DeepEqual(server, tel.Acknowledged) {
			return false, diffKeys(server, tel.Acknowledged)
		}
		return true, ""
	})

	puts := statusPuts(e.cp)
	patches, bad := 0, 0
	for _, r := range puts {
		if strings.HasPrefix(r.ContentType, "application/json-patch+json") {
			patches++
		}
		if r.Status != 200 {
			bad++
			t.Errorf("status edit answered %d: %s", r.Status, r.Body)
		}
	}
	if patches*10 < len(puts)*8 {
		t.Fatalf("only %d of %d status edits were JSON patches", patches, len(puts))
	}
	t.Logf("%d status edits, %d JSON patches, %d refused; berthd counted %d patches and %d puts", len(puts), patches, bad, last.Patches, last.Puts)

	// The document carries the new container stats and coe-resources,
	// since nuvlatest's resource-metadata announces both.
	doc, _ := e.cp.Resource(e.statusID())
	res, _ := doc["resources"].(map[string]any)
	stats, _ := res["container-stats"].([]any)
	if len(stats) == 0 {
		t.Fatalf("no container-stats: %s", mustJSON(res))
	}
	if _, ok := stats[0].(map[string]any)["cpu-usage"]; !ok {
		t.Fatalf("container-stats not in the new format: %s", mustJSON(stats[0]))
	}
	coe, _ := doc["coe-resources"].(map[string]any)
	dockerRes, _ := coe["docker"].(map[string]any)
	cs, _ := dockerRes["containers"].([]any)
	found := false
	for _, c := range cs {
		if c.(map[string]any)["Id"] == ids[0] {
			found = true
		}
	}
	if !found {
		t.Fatalf("container %s missing from coe-resources: %d containers", ids[0], len(cs))
	}
	if ip, _ := doc["installation-parameters"].(map[string]any); ip["project-name"] != "berth" || ip["working-dir"] != e.dir {
		t.Fatalf("installation-parameters = %v", ip)
	}

	// Another writer changes the stored document behind berthd's back: the
	// next patch no longer applies (400), berthd falls back to a plain PUT,
	// re-reads the document and is in sync again.
	e.cp.SetResourceField(e.statusID(), "resources", nil)
	eventually(t, 15*time.Second, "a plain PUT after the refused patch, and the documents in sync", func() (bool, string) {
		tel, err := d.Client().Telemetry(ctx, false)
		if err != nil {
			return false, err.Error()
		}
		doc, _ := e.cp.Resource(e.statusID())
		server := telemetry.AgentView(doc)
		return tel.Puts > 0 && reflect.DeepEqual(server, tel.Acknowledged), fmt.Sprintf("puts %d, %s", tel.Puts, diffKeys(server, tel.Acknowledged))
	})
	refused := 0
	for _, r := range statusPuts(e.cp) {
		if r.Status == 400 {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no patch was refused after the document diverged")
	}
}

func diffKeys(a, b map[string]any) string {
	var out []string
	for k := range a {
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k+"(only berthd)")
		}
	}
	return "differing keys: " + strings.Join(out, ",")
}

// rssKiB is the resident set of a process.
func rssKiB(t testing.TB, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// The box survives the control plane disappearing (blackholed), failing
// (500) and forgetting its session (403): no crash, bounded memory, the
// heartbeat back within about an interval of recovery, and jobs queued in
// the meantime run afterwards.
func TestTelemetryOutages(t *testing.T) {
	e := newE2E(t)
	d := e.start()
	e.waitOnline()
	ctx := context.Background()
	pid := d.Cmd.Process.Pid
	baseRSS := rssKiB(t, pid)
	const rssBound = 64 << 10 // KiB of growth allowed over the whole test

	lastHeartbeat := func() time.Time {
		var last time.Time
		for _, r := range e.cp.Requests() {
			if strings.HasSuffix(r.Path, "/heartbeat") && r.Status == 200 {
				last = r.Done
			}
		}
		return last
	}
	outage := func(name string, f nuvlatest.Fault) {
		t.Helper()
		e.cp.SetFault(f)
		eventually(t, 20*time.Second, name+": berthd offline", func() (bool, string) {
			st, err := d.Client().Status(ctx)
			if err != nil {
				return false, err.Error()
			}
			return st.State == "offline" && st.Nuvla != nil && !st.Nuvla.OfflineSince.IsZero(), st.State
		})
		// A job queued while the control plane is away.
		job := e.cp.EnqueueJob(e.box, "make_coffee", nil, 2)
		peak := 0
		for range 5 {
			peak = max(peak, rssKiB(t, pid))
			time.Sleep(time.Second)
		}
		if peak-baseRSS > rssBound {
			t.Fatalf("%s: RSS grew from %d to %d KiB", name, baseRSS, peak)
		}
		recovered := time.Now()
		e.cp.SetFault(nuvlatest.Fault{})
		// Within one heartbeat interval (1 s): an offline probe gives up
		// after half an interval and the next follows half an interval
		// later. 300 ms of slack covers the request itself under -race.
		eventually(t, 6*time.Second, name+": heartbeat resumes", func() (bool, string) {
			return lastHeartbeat().After(recovered), ""
		})
		if back := lastHeartbeat().Sub(recovered); back > 1300*time.Millisecond {
			t.Fatalf("%s: heartbeat back %s after recovery, want within one interval (1s)", name, back)
		}
		t.Logf("%s: heartbeat back %s after recovery, RSS peak %d KiB (start %d)", name, lastHeartbeat().Sub(recovered).Round(time.Millisecond), peak, baseRSS)
		if j := e.waitJob(job); j["state"] != "FAILED" || !strings.Contains(fmt.Sprint(j["status-message"]), "make_coffee") {
			t.Fatalf("%s: job queued during the outage: %v %v", name, j["state"], j["status-message"])
		}
		st, _ := d.Client().Status(ctx)
		if st.State != "online" {
			t.Fatalf("%s: state %s after recovery", name, st.State)
		}
	}
	outage("blackhole", nuvlatest.Fault{Blackhole: true})
	outage("500", nuvlatest.Fault{Status: 500})

	logins := func() int {
		n := 0
		for _, r := range e.cp.Requests() {
			if r.Method == "POST" && r.Path == "/api/session" && r.Status == 201 {
				n++
			}
		}
		return n
	}
	before := logins()
	e.cp.ExpireSessions()
	expired := time.Now()
	eventually(t, 10*time.Second, "heartbeat after the session expired", func() (bool, string) {
		return lastHeartbeat().After(expired), ""
	})
	time.Sleep(2 * time.Second)
	if n := logins() - before; n != 1 {
		t.Fatalf("%d re-logins after the session expired, want 1", n)
	}
	// The status document is still in sync after all this.
	eventually(t, 10*time.Second, "status in sync after the outages", func() (bool, string) {
		tel, _ := d.Client().Telemetry(ctx, false)
		doc, _ := e.cp.Resource(e.statusID())
		return tel.Acknowledged != nil && reflect.DeepEqual(telemetry.AgentView(doc), tel.Acknowledged), ""
	})
}

// unixGet opens a streaming GET on berthd's socket.
func unixGet(ctx context.Context, socket, path string) (*http.Response, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://berthd"+path, nil)
	if err != nil {
		return nil, err
	}
	return (&http.Client{Transport: tr}).Do(req)
}

// The event stream carries app, job and telemetry events, and /metrics
// parses with the Prometheus text parser and has the host, app and agent
// metrics.
func TestEventsAndMetrics(t *testing.T) {
	e := newE2E(t)
	d := e.start()
	e.waitOnline()
	app := "ev-" + randID()
	enginetest.CleanupApp(t, e.docker, app)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := unixGet(ctx, d.Socket, "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if typ, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				mu.Lock()
				seen[typ]++
				mu.Unlock()
			}
		}
	})
	e.labelled(app, "web", true)
	job := e.cp.EnqueueJob(e.box, "make_coffee", nil, 2)
	e.waitJob(job)
	eventually(t, 30*time.Second, "app, job and telemetry events", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return seen["app"] > 0 && seen["job"] > 0 && seen["telemetry"] > 0, fmt.Sprint(seen)
	})

	// Metrics: wait for a sample that includes the app.
	var fams map[string]*dtoFamily
	eventually(t, 20*time.Second, "metrics with the app", func() (bool, string) {
		mresp, err := unixGet(ctx, d.Socket, "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer mresp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = p.TextToMetricFamilies(mresp.Body)
		if err != nil {
			t.Fatalf("metrics do not parse: %v", err)
		}
		if fams["berth_job_duration_seconds"] == nil {
			return false, "no job duration yet"
		}
		f := fams["berth_app_memory_bytes"]
		if f == nil {
			return false, "no berth_app_memory_bytes"
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "app" && l.GetValue() == app {
					return true, ""
				}
			}
		}
		return false, "app not in berth_app_memory_bytes"
	})
	for _, name := range []string{"berth_host_cpu_cores", "berth_host_memory_total_bytes", "berth_app_cpu_percent", "berth_app_state",
		"berth_agent_online", "berth_agent_last_heartbeat_age_seconds", "berth_job_duration_seconds", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	if v := fams["berth_agent_online"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("berth_agent_online = %v", v)
	}
	cancel()
	wg.Wait()
}

type dtoFamily = dto.MetricFamily
