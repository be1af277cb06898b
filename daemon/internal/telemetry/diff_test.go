package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/engine"
)

// apply applies a patch the way the server does and returns the result.
func apply(t testing.TB, base map[string]any, patch []byte) map[string]any {
	t.Helper()
	doc, _ := json.Marshal(base)
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decode patch %s: %v", patch, err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatalf("apply patch %s: %v", patch, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func roundTrip(t testing.TB, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func fakeContainers(n int, tick int) []engine.ContainerStat {
	out := make([]engine.ContainerStat, n)
	for i := range out {
		out[i] = engine.ContainerStat{
			ID: fmt.Sprintf("%064d", i), Name: fmt.Sprintf("app%d-web", i), Image: "testapp:1", AppID: fmt.Sprintf("app%d", i),
			Service: "web", State: "running", Status: "Up 5 minutes", Created: time.Unix(1_700_000_000, 0), Started: time.Unix(1_700_000_001, 0),
			CPUNanos: uint64(tick) * 1e9 * uint64(i%3), MemUsage: 10 << 20, DiskRead: 1 << 20, NetRx: uint64(tick) * 100, NetTx: 50, Source: "cgroup2",
		}
	}
	return out
}

func TestDiffRoundTrip(t *testing.T) {
	s := &Sampler{DockerVersion: func(context.Context) string { return "28.0.0" }}
	s.SetFeatures(Features{NewContainerStats: true, IPType: true})
	n := 3
	s.Containers = func(context.Context) ([]engine.ContainerStat, error) { return fakeContainers(n, 1), nil }
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r1, err := s.Sample(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	base := r1.Doc
	if !reflect.DeepEqual(roundTrip(t, base), base) {
		t.Fatal("the document is not JSON-native: it changes through a JSON round trip")
	}
	// A container leaves, the temperatures key disappears.
	base["temperatures"] = []any{map[string]any{"thermal-zone": "cpu", "value": 40.0}}
	n = 2
	r2, err := s.Sample(context.Background(), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	patch, removed, err := Diff(base, r2.Doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, hasTemps := r2.Doc["temperatures"]; !hasTemps && !slices.Equal(removed, []string{"temperatures"}) {
		t.Fatalf("removed = %v", removed)
	}
	got := apply(t, base, patch)
	if !reflect.DeepEqual(got, roundTrip(t, r2.Doc)) {
		t.Fatalf("patch %s does not turn base into the new document", patch)
	}
	var ops []map[string]any
	_ = json.Unmarshal(patch, &ops)
	removes := 0
	for _, op := range ops {
		if op["op"] == "remove" && op["path"] != "/temperatures" {
			removes++
		}
	}
	if removes != 1 {
		t.Fatalf("a container leaving should be one remove op, got %d: %s", removes, patch)
	}
	// The partial PUT body carries whole changed top-level values only.
	ch := Changed(base, r2.Doc)
	if _, ok := ch["current-time"]; !ok {
		t.Fatalf("current-time not in changed keys: %v", ch)
	}
	if _, ok := ch["hostname"]; ok {
		t.Fatal("unchanged hostname in the partial body")
	}
	// AgentView drops server keys.
	v := AgentView(map[string]any{"id": "x", "online": true, "hostname": "h", "resources-prev": map[string]any{}})
	if len(v) != 1 || v["hostname"] != "h" {
		t.Fatalf("AgentView = %v", v)
	}
}

func TestDocumentFormats(t *testing.T) {
	for _, feat := range []Features{{}, {NewContainerStats: true, CoeResources: true, IPType: true}} {
		s := &Sampler{
			Containers: func(context.Context) ([]engine.ContainerStat, error) { return fakeContainers(2, 1), nil },
			Coe: func(context.Context) (engine.CoeResources, error) {
				return engine.CoeResources{Containers: []any{map[string]any{"Id": "abc"}}}, nil
			},
			Install: Install{WorkingDir: "/var/lib/berth", ConfigFiles: []string{"/etc/berth/berthd.toml"}},
		}
		s.SetFeatures(feat)
		r, err := s.Sample(context.Background(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		doc := r.Doc
		for k := range doc {
			if !slices.Contains(AgentKeys, k) {
				t.Errorf("key %s is not an agent key", k)
			}
		}
		assertNoNull(t, "", doc)
		item := doc["resources"].(map[string]any)["container-stats"].([]any)[0].(map[string]any)
		_, hasNew := item["cpu-usage"]
		_, hasOld := item["cpu-percent"]
		if hasNew != feat.NewContainerStats || hasOld == feat.NewContainerStats {
			t.Errorf("features %+v: container stat %v", feat, item)
		}
		_, hasCoe := doc["coe-resources"]
		if hasCoe != feat.CoeResources {
			t.Errorf("features %+v: coe-resources present %v", feat, hasCoe)
		}
		for _, i := range doc["network"].(map[string]any)["interfaces"].([]any) {
			for _, ip := range i.(map[string]any)["ips"].([]any) {
				if _, ok := ip.(map[string]any)["type"]; ok != feat.IPType {
					t.Errorf("features %+v: ip %v", feat, ip)
				}
			}
		}
		ip := doc["installation-parameters"].(map[string]any)
		if ip["project-name"] != "berth" || ip["working-dir"] != "/var/lib/berth" || len(ip["environment"].([]any)) != 0 {
			t.Errorf("installation-parameters = %v", ip)
		}
		if r.Sample.Apps["app0"].Containers != 1 || r.Sample.Apps["app0"].State != "running" {
			t.Errorf("app usage = %+v", r.Sample.Apps)
		}
	}
}

func assertNoNull(t *testing.T, path string, v any) {
	t.Helper()
	switch x := v.(type) {
	case nil:
		t.Errorf("%s is null", path)
	case map[string]any:
		for k, e := range x {
			assertNoNull(t, path+"/"+k, e)
		}
	case []any:
		for i, e := range x {
			assertNoNull(t, fmt.Sprintf("%s/%d", path, i), e)
		}
	case string, float64, bool:
	default:
		t.Errorf("%s is a %T, not a JSON-native value", path, v)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	h := NewHistory(3)
	if _, ok := h.Latest(); ok {
		t.Fatal("latest of an empty history")
	}
	for i := range 5 {
		h.Add(client.Sample{Time: time.Unix(int64(i), 0)})
	}
	got := h.Samples()
	if len(got) != 3 || got[0].Time.Unix() != 2 || got[2].Time.Unix() != 4 {
		t.Fatalf("history = %v", got)
	}
	if l, _ := h.Latest(); l.Time.Unix() != 4 {
		t.Fatalf("latest = %v", l.Time)
	}
}

// CPU % is computed against the previous sample of the same container.
func TestContainerCPUPercent(t *testing.T) {
	s := &Sampler{}
	s.SetFeatures(Features{NewContainerStats: true})
	tick := 0
	s.Containers = func(context.Context) ([]engine.ContainerStat, error) { return fakeContainers(3, tick), nil }
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.Sample(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	tick = 10 // container i used 10*(i%3) s of CPU in 10 s
	r, err := s.Sample(context.Background(), now.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range r.Sample.Containers {
		if want := float64(100 * (i % 3)); c.CPUPercent != want {
			t.Errorf("container %d: %v%%, want %v", i, c.CPUPercent, want)
		}
	}
}
