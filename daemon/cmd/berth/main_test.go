package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/api"
)

type fakeBackend struct {
	status client.Status
	apps   []client.App
}

func (f *fakeBackend) Status(context.Context) client.Status       { return f.status }
func (f *fakeBackend) Apps(context.Context) ([]client.App, error) { return f.apps, nil }

// startBerthd serves the real local API with a fake backend on a temp socket.
func startBerthd(t *testing.T, b api.Backend) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "berthd.sock")
	s, err := api.New(b, api.Options{Socket: sock, Version: "9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return sock
}

// run executes berth with args in-process and returns stdout.
func run(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd(func(k string) string { return env[k] }, "test")
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func sampleApps() []client.App {
	return []client.App{{
		ID: "5f3c-deploy", Name: "grafana", Kind: "nuvla-component", Source: "nuvla",
		Desired: "running", State: "running", Created: time.Now().Add(-3 * time.Hour),
		Services: []client.Service{{Name: "grafana", Image: "grafana/grafana:11", State: "running",
			ContainerID: "0123456789abcdef",
			Ports: []client.Port{
				{Target: 8080, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 32768},
				{Target: 8080, Protocol: "tcp", HostIP: "::", HostPort: 32768},
			}}},
	}}
}

func TestAppsTable(t *testing.T) {
	sock := startBerthd(t, &fakeBackend{apps: sampleApps()})
	out, err := run(t, nil, "apps", "--socket", sock)
	if err != nil {
		t.Fatalf("berth apps: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a header and one row, got:\n%s", out)
	}
	for _, col := range []string{"ID", "NAME", "KIND", "STATE", "SERVICES", "PORTS", "AGE"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header %q lacks %s", lines[0], col)
		}
	}
	for _, want := range []string{"5f3c-deploy", "grafana", "nuvla-component", "running", "1/1", "3h"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	// Docker's IPv4 and IPv6 bindings of one port show once.
	if strings.Count(lines[1], "tcp/8080->32768") != 1 {
		t.Errorf("row %q should show tcp/8080->32768 once", lines[1])
	}
}

func TestAppsJSONAndSocketFromEnv(t *testing.T) {
	sock := startBerthd(t, &fakeBackend{apps: sampleApps()})
	out, err := run(t, map[string]string{"BERTH_SOCKET": sock}, "apps", "--json")
	if err != nil {
		t.Fatalf("berth apps --json: %v", err)
	}
	var apps []client.App
	if err := json.Unmarshal([]byte(out), &apps); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if len(apps) != 1 || apps[0].Services[0].Ports[0].HostPort != 32768 {
		t.Errorf("apps = %+v", apps)
	}

	out, err = run(t, map[string]string{"BERTH_SOCKET": sock}, "status", "--json")
	if err != nil || !json.Valid([]byte(out)) || !strings.Contains(out, `"version": "9.9.9"`) {
		t.Errorf("status --json: %v\n%s", err, out)
	}
}

func TestAppDetailsAndUnknownApp(t *testing.T) {
	sock := startBerthd(t, &fakeBackend{apps: sampleApps()})
	out, err := run(t, nil, "--socket", sock, "apps", "5f3c-deploy")
	if err != nil {
		t.Fatalf("berth apps <id>: %v", err)
	}
	for _, want := range []string{"grafana/grafana:11", "tcp/8080->32768", "0123456789ab", "nuvla"} {
		if !strings.Contains(out, want) {
			t.Errorf("details lack %q:\n%s", want, out)
		}
	}
	if _, err := run(t, nil, "--socket", sock, "apps", "nope"); err == nil || err.Error() != "no app nope" {
		t.Errorf("unknown app: err = %v, want \"no app nope\"", err)
	}
}

func TestEmptyAppsAndUnreachable(t *testing.T) {
	sock := startBerthd(t, &fakeBackend{})
	out, err := run(t, nil, "--socket", sock, "apps")
	if err != nil || strings.TrimSpace(out) != emptyApps {
		t.Errorf("no apps: %q, %v", out, err)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	_, err = run(t, nil, "--socket", missing, "status")
	if err == nil || !strings.Contains(err.Error(), "cannot reach berthd at "+missing) {
		t.Errorf("unreachable: %v", err)
	}
}

func TestStatusSummary(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	st := client.Status{
		Version: "1.0.0", Mode: "nuvla", State: "online", Since: now.Add(-2 * time.Hour), Started: now.Add(-3 * time.Hour),
		Docker: client.Docker{Connected: true, Version: "28.5.2", APIVersion: "1.51"},
		Nuvla: &client.Nuvla{Endpoint: "https://nuvla.io", NuvlaboxID: "nuvlabox/abc", BoxState: "COMMISSIONED",
			Online: true, LastHeartbeat: now.Add(-12 * time.Second)},
		Jobs: []client.Job{{ID: "job/1", Action: "start_deployment", Target: "deployment/d1", State: "succeeded",
			Updated: now.Add(-5 * time.Minute)}},
		Apps: map[string]int{"running": 2, "stopped": 1},
	}
	var out bytes.Buffer
	if err := printStatus(&out, st, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nuvla", "online (for 2h)", "connected, Docker 28.5.2 (API 1.51)", "https://nuvla.io",
		"nuvlabox/abc (COMMISSIONED)", "last heartbeat 12s ago", "2 running, 1 stopped", "start_deployment", "5m ago"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}

	st.Nuvla.Online = false
	st.Nuvla.OfflineSince = now.Add(-90 * time.Second)
	st.Nuvla.LastError = "dial tcp: i/o timeout"
	st.Jobs = nil
	out.Reset()
	if err := printStatus(&out, st, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"offline for 1m30s, last heartbeat 12s ago: dial tcp: i/o timeout", "No recent jobs."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("offline status lacks %q:\n%s", want, out.String())
		}
	}
}

func TestValuesCannotInjectTerminalEscapes(t *testing.T) {
	apps := sampleApps()
	apps[0].Name = "evil\x1b]0;pwned\x07\tname\n"
	var out bytes.Buffer
	if err := printApps(&out, apps, time.Now()); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\x07\t") || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("control characters reached the terminal: %q", out.String())
	}
}
