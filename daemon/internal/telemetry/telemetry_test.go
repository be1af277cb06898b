package telemetry

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// The document must hold what Nuvla's closed schema requires when
// resources are present, in the right units.
func TestStatusDocument(t *testing.T) {
	s := &Sampler{DockerVersion: func(context.Context) string { return "20.10.24" }}
	doc, err := s.Status(context.Background(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(doc)
	var d struct {
		Status      string `json:"status"`
		CurrentTime string `json:"current-time"`
		Engine      string `json:"nuvlabox-engine-version"`
		Docker      string `json:"docker-server-version"`
		Resources   struct {
			CPU struct {
				Capacity int      `json:"capacity"`
				Load     *float64 `json:"load"`
			} `json:"cpu"`
			RAM struct {
				Capacity int64 `json:"capacity"`
				Used     int64 `json:"used"`
			} `json:"ram"`
			Disks []struct {
				Device   string `json:"device"`
				Capacity int64  `json:"capacity"`
				Used     int64  `json:"used"`
			} `json:"disks"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Status != "OPERATIONAL" || d.CurrentTime != "2026-01-02T03:04:05Z" || d.Engine != EngineVersion || d.Docker != "20.10.24" {
		t.Fatalf("header fields: %s", b)
	}
	if d.Resources.CPU.Capacity < 1 || d.Resources.CPU.Load == nil {
		t.Fatalf("cpu: %s", b)
	}
	// RAM is in MiB: a machine has between 64 MiB and 64 TiB.
	if d.Resources.RAM.Capacity < 64 || d.Resources.RAM.Capacity > 64<<20 || d.Resources.RAM.Used > d.Resources.RAM.Capacity {
		t.Fatalf("ram not in MiB: %+v", d.Resources.RAM)
	}
	// Disks are in bytes: at least 1 MiB.
	if len(d.Resources.Disks) == 0 || d.Resources.Disks[0].Capacity < 1<<20 {
		t.Fatalf("disks not in bytes: %+v", d.Resources.Disks)
	}
	for k, v := range doc {
		if v == nil {
			t.Errorf("key %s is null; Nuvla rejects nulls", k)
		}
	}
}
