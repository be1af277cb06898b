package engine

import (
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// createLabelled creates a container labelled as the harness's app.
func (h *harness) createLabelled(t *testing.T, service string, start bool) string {
	t.Helper()
	ctx := t.Context()
	labels := map[string]string{apps.LabelManaged: apps.ManagedValue, apps.LabelApp: h.appID,
		apps.LabelComposeProject: h.appID, apps.LabelComposeService: service}
	c, err := h.e.cli.ContainerCreate(ctx, &container.Config{Image: h.image, Labels: labels}, nil, nil, nil, h.appID+"-"+service)
	if err != nil {
		t.Fatal(err)
	}
	if start {
		if err := h.e.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return c.ID
}

func TestContainerStatsAndRawLists(t *testing.T) {
	h := newHarness(t)
	running := h.createLabelled(t, "web", true)
	created := h.createLabelled(t, "idle", false)
	sr := NewStatsReader(h.e)
	defer sr.Close()
	for pass := range 2 { // the second pass uses the inspect cache
		stats, err := sr.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]ContainerStat{}
		for _, s := range stats {
			byID[s.ID] = s
		}
		r, c := byID[running], byID[created]
		if r.Source == "" || r.CPUNanos == 0 || r.MemUsage == 0 || r.Started.IsZero() || r.AppID != h.appID || r.Service != "web" {
			t.Fatalf("pass %d: running container stats = %+v", pass, r)
		}
		if c.ID == "" || c.Source != "" || c.State != "created" {
			t.Fatalf("pass %d: created container stats = %+v", pass, c)
		}
		t.Logf("pass %d: counters from %s: cpu %dns mem %d net %d/%d", pass, r.Source, r.CPUNanos, r.MemUsage, r.NetRx, r.NetTx)
	}
	if sr.entries[running] == nil || sr.entries[created] == nil {
		t.Fatalf("inspect cache lacks the containers: %d entries", len(sr.entries))
	}

	raw, err := sr.RawLists(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range raw.Containers {
		m := it.(map[string]any)
		if m["Id"] != running {
			continue
		}
		found = true
		for _, k := range []string{"Image", "ImageID", "Labels", "Ports", "Mounts", "NetworkSettings", "State"} {
			if _, ok := m[k]; !ok {
				t.Errorf("raw container lacks %s: %v", k, m)
			}
		}
		nets := m["NetworkSettings"].(map[string]any)["Networks"].(map[string]any)
		for _, n := range nets {
			if n.(map[string]any)["NetworkID"] == "" {
				t.Errorf("network without NetworkID: %v", n)
			}
		}
	}
	if !found || len(raw.Images) == 0 || len(raw.Networks) == 0 {
		t.Fatalf("raw lists: container found %v, %d images, %d networks", found, len(raw.Images), len(raw.Networks))
	}
	assertNoNulls(t, raw.Containers)
	assertNoNulls(t, raw.Images)
	assertNoNulls(t, raw.Volumes)
	assertNoNulls(t, raw.Networks)
}

func assertNoNulls(t *testing.T, v any) {
	t.Helper()
	switch x := v.(type) {
	case nil:
		t.Fatal("null in raw list")
	case map[string]any:
		for _, e := range x {
			assertNoNulls(t, e)
		}
	case []any:
		for _, e := range x {
			assertNoNulls(t, e)
		}
	}
}

// The parsers read both cgroup hierarchies' files and net/dev.
func TestParseCounterFiles(t *testing.T) {
	if n := parseCPUStat([]byte("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")); n != 1_500_000 {
		t.Fatalf("cpu.stat: %d", n)
	}
	if r, w := parseIOStat([]byte("8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n")); r != 101 || w != 202 {
		t.Fatalf("io.stat: %d %d", r, w)
	}
	if r, w := parseBlkio([]byte("8:0 Read 10\n8:0 Write 20\n8:0 Total 30\nTotal 30\n")); r != 10 || w != 20 {
		t.Fatalf("blkio: %d %d", r, w)
	}
	dev := "Inter-|   Receive\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
	if rx, tx := parseNetDev([]byte(dev)); rx != 1000 || tx != 2000 {
		t.Fatalf("net/dev: %d %d", rx, tx)
	}
	if !restarted("Up 2 hours", "Up Less than a second") || restarted("Up Less than a second", "Up Less than a second") {
		t.Fatal("restart detection")
	}
}
