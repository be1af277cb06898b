package telemetry

import (
	"fmt"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/engine"
)

// containerStats turns counters into resources.container-stats items (the
// new typed format when the server supports it, else the old strings) and
// fills the sample's per-container usage. CPU % is the CPU time used since
// the previous sample over the wall time between them (100 = one core).
func (s *Sampler) containerStats(cs []engine.ContainerStat, now time.Time, f facts, feat Features, smp *client.Sample) []any {
	if s.prevCPU == nil {
		s.prevCPU = map[string]cpuMark{}
	}
	seen := make(map[string]bool, len(cs))
	out := make([]any, 0, len(cs))
	for i := range cs {
		c := &cs[i]
		seen[c.ID] = true
		pct := 0.0
		if c.Source != "" {
			if p, ok := s.prevCPU[c.ID]; ok && c.CPUNanos >= p.nanos && now.After(p.at) {
				pct = round(100*float64(c.CPUNanos-p.nanos)/float64(now.Sub(p.at).Nanoseconds()), 2)
			}
			s.prevCPU[c.ID] = cpuMark{nanos: c.CPUNanos, at: now}
		} else {
			delete(s.prevCPU, c.ID)
		}
		memLimit := c.MemLimit
		if memLimit == 0 {
			memLimit = s.facts.memTotal
		}
		cpuLimit := c.CPULimit
		if cpuLimit == 0 {
			cpuLimit = float64(f.cores)
		}
		smp.Containers = append(smp.Containers, client.ContainerUsage{
			ID: c.ID, Name: c.Name, App: c.AppID, Service: c.Service, State: c.State,
			CPUPercent: pct, MemBytes: int64(c.MemUsage), MemLimit: int64(c.MemLimit),
			NetRx: int64(c.NetRx), NetTx: int64(c.NetTx), DiskRead: int64(c.DiskRead), DiskWrite: int64(c.DiskWrite),
		})
		if feat.NewContainerStats {
			item := map[string]any{
				"id": c.ID, "name": c.Name, "image": c.Image, "state": c.State, "status": c.Status,
				"created-at":    c.Created.Format(time.RFC3339),
				"restart-count": float64(c.RestartCount),
				"cpu-usage":     pct,
				"cpu-limit":     round(cpuLimit, 2),
				"cpu-capacity":  float64(f.cores),
				"mem-usage":     float64(c.MemUsage),
				"mem-limit":     float64(memLimit),
				"disk-in":       float64(c.DiskRead),
				"disk-out":      float64(c.DiskWrite),
				"net-in":        float64(c.NetRx),
				"net-out":       float64(c.NetTx),
			}
			if !c.Started.IsZero() {
				item["started-at"] = c.Started.Format(time.RFC3339)
			}
			out = append(out, item)
			continue
		}
		memPct := 0.0
		if memLimit > 0 {
			memPct = 100 * float64(c.MemUsage) / float64(memLimit)
		}
		out = append(out, map[string]any{
			"id": c.ID, "name": c.Name, "container-status": c.State,
			"restart-count":   float64(c.RestartCount),
			"cpu-percent":     fmt.Sprintf("%.2f%%", pct),
			"mem-percent":     fmt.Sprintf("%.2f%%", memPct),
			"mem-usage-limit": fmt.Sprintf("%s / %s", mb(c.MemUsage), mb(memLimit)),
			"net-in-out":      fmt.Sprintf("%s / %s", mb(c.NetRx), mb(c.NetTx)),
			"blk-in-out":      fmt.Sprintf("%s / %s", mb(c.DiskRead), mb(c.DiskWrite)),
		})
	}
	for id := range s.prevCPU {
		if !seen[id] {
			delete(s.prevCPU, id)
		}
	}
	return out
}

func mb(b uint64) string { return fmt.Sprintf("%.1fMB", float64(b)/1e6) }

// appUsage sums the containers per app.
func appUsage(cs []client.ContainerUsage) map[string]client.AppUsage {
	if len(cs) == 0 {
		return nil
	}
	out := map[string]client.AppUsage{}
	for _, c := range cs {
		if c.App == "" {
			continue
		}
		a := out[c.App]
		a.Containers++
		if c.State == "running" {
			a.Running++
		}
		a.CPUPercent = round(a.CPUPercent+c.CPUPercent, 2)
		a.MemBytes += c.MemBytes
		out[c.App] = a
	}
	for id, a := range out {
		switch {
		case a.Running == a.Containers:
			a.State = "running"
		case a.Running == 0:
			a.State = "stopped"
		default:
			a.State = "partial"
		}
		out[id] = a
	}
	return out
}
