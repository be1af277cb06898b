package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

// topBackend adds telemetry to the fake backend.
type topBackend struct {
	fakeBackend
	fresh bool
}

func (b *topBackend) Telemetry(_ context.Context, fresh bool) (client.Telemetry, error) {
	b.fresh = fresh
	s := client.Sample{
		Time: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC),
		CPU:  client.CPU{Cores: 4, Load1: 0.5, Load5: 0.25, Load15: 0.1, Percent: 12.5},
		RAM:  client.RAM{Total: 7847, Used: 2110},
		Apps: map[string]client.AppUsage{
			"5f3c-deploy": {State: "running", Containers: 1, Running: 1, CPUPercent: 3.25, MemBytes: 120 << 20},
			"orphan":      {State: "partial", Containers: 2, Running: 1, CPUPercent: 50, MemBytes: 1536},
		},
	}
	return client.Telemetry{Latest: &s, History: []client.Sample{s}}, nil
}

func TestTopOnce(t *testing.T) {
	b := &topBackend{fakeBackend: fakeBackend{apps: sampleApps()}}
	sock := startBerthd(t, b)
	out, err := run(t, nil, "--socket", sock, "top", "--once")
	if err != nil {
		t.Fatal(err)
	}
	if !b.fresh {
		t.Error("berth top did not ask for a fresh sample")
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("want host line, blank, header and 2 apps:\n%s", out)
	}
	for _, want := range []string{"cpu 12.5% of 4 cores", "load 0.50 0.25 0.10", "mem 2110/7847 MiB"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("host line %q lacks %q", lines[0], want)
		}
	}
	if f := strings.Fields(lines[2]); strings.Join(f, " ") != "APP NAME STATE CONTAINERS CPU % MEMORY" {
		t.Errorf("header = %q", lines[2])
	}
	// Busiest first; names from the apps list; no ANSI codes off a terminal.
	if f := strings.Fields(lines[3]); len(f) != 6 || f[0] != "orphan" || f[1] != "-" || f[2] != "partial" || f[3] != "1/2" || f[4] != "50.0" || f[5] != "1.5KiB" {
		t.Errorf("first row = %q", lines[3])
	}
	if f := strings.Fields(lines[4]); len(f) != 6 || f[0] != "5f3c-deploy" || f[1] != "grafana" || f[3] != "1/1" || f[4] != "3.2" || f[5] != "120.0MiB" {
		t.Errorf("second row = %q", lines[4])
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("escape codes written to a non-terminal")
	}

	// --json prints the sample.
	out, err = run(t, nil, "--socket", sock, "--json", "top", "--once")
	if err != nil || !strings.Contains(out, `"cpu-percent": 50`) {
		t.Fatalf("--json: %v\n%s", err, out)
	}

	// A berthd without telemetry answers 404: the error says so.
	sock = startBerthd(t, &fakeBackend{})
	if _, err := run(t, nil, "--socket", sock, "top", "--once"); err == nil || !strings.Contains(err.Error(), "telemetry is not available") {
		t.Fatalf("err = %v", err)
	}
}
