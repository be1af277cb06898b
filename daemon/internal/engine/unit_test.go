package engine

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/go-connections/nat"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// lockedWriter serialises writes of a shared log buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func imageRemoveOpts() image.RemoveOptions { return image.RemoveOptions{} }

func TestDedupePorts(t *testing.T) {
	in := []apps.PortBinding{
		{Target: 8080, Protocol: "tcp", HostIP: "::", HostPort: 32768},
		{Target: 8080, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 32768},
		{Target: 53, Protocol: "udp", HostIP: "127.0.0.1", HostPort: 5353},
		{Target: 9000, Protocol: "tcp", HostIP: "::1", HostPort: 9000},
		// Docker 20.10 may give each family its own ephemeral port.
		{Target: 5000, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 32941},
		{Target: 5000, Protocol: "tcp", HostIP: "::", HostPort: 32946},
		// Published twice on IPv4 on purpose: both stay.
		{Target: 80, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 8000},
		{Target: 80, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 8001},
		// IPv6 only: kept, as all addresses.
		{Target: 7000, Protocol: "tcp", HostIP: "::", HostPort: 7000},
	}
	want := []apps.PortBinding{
		{Target: 53, Protocol: "udp", HostIP: "127.0.0.1", HostPort: 5353},
		{Target: 80, Protocol: "tcp", HostIP: "", HostPort: 8000},
		{Target: 80, Protocol: "tcp", HostIP: "", HostPort: 8001},
		{Target: 5000, Protocol: "tcp", HostIP: "", HostPort: 32941},
		{Target: 7000, Protocol: "tcp", HostIP: "", HostPort: 7000},
		{Target: 8080, Protocol: "tcp", HostIP: "", HostPort: 32768},
		{Target: 9000, Protocol: "tcp", HostIP: "::1", HostPort: 9000},
	}
	if got := dedupePorts(in); !reflect.DeepEqual(got, want) {
		t.Errorf("dedupePorts:\n got %+v\nwant %+v", got, want)
	}
	pm := nat.PortMap{
		"8080/tcp": {{HostIP: "0.0.0.0", HostPort: "32768"}, {HostIP: "::", HostPort: "32768"}},
		"9090/tcp": {{HostIP: "127.0.0.1", HostPort: "4000"}},
		"7000/tcp": nil, // exposed, not published
	}
	wantPM := []apps.PortBinding{
		{Target: 8080, Protocol: "tcp", HostPort: 32768},
		{Target: 9090, Protocol: "tcp", HostIP: "127.0.0.1", HostPort: 4000},
	}
	if got := portsFromMap(pm); !reflect.DeepEqual(got, wantPM) {
		t.Errorf("portsFromMap:\n got %+v\nwant %+v", got, wantPM)
	}
	if dedupePorts(nil) != nil {
		t.Error("nil in, non-nil out")
	}
}

func TestContainerSpec(t *testing.T) {
	app := &apps.App{ID: "a1", Kind: apps.KindSession, Owner: "1000"}
	svc := apps.Service{
		Name: "s", Image: "nginx:1", Command: []string{"run"}, Entrypoint: []string{"/bin/sh", "-c"},
		Env: map[string]string{"B": "2", "A": "1"},
		Ports: []apps.Port{
			{Target: 80, Protocol: "tcp"},
			{Target: 80, Published: 8080, Protocol: "tcp", HostIP: "127.0.0.1"},
			{Target: 53, Published: 53, Protocol: "udp"},
		},
		Mounts: []apps.Mount{
			{Type: apps.MountBind, Source: "/srv", Target: "/srv", ReadOnly: true},
			{Type: apps.MountVolume, Source: "v", Target: "/v"},
			{Type: apps.MountTmpfs, Target: "/tmp"},
		},
		CPUs: 1.5, MemoryMiB: 128, User: "nobody",
		Restart: apps.RestartPolicy{Condition: apps.RestartOnFailure, MaxAttempts: 2},
	}
	sp, err := containerSpec(app, &svc)
	if err != nil {
		t.Fatal(err)
	}
	c, h := sp.config, sp.host
	if !reflect.DeepEqual([]string(c.Cmd), svc.Command) || !reflect.DeepEqual([]string(c.Entrypoint), svc.Entrypoint) ||
		!reflect.DeepEqual(c.Env, []string{"A=1", "B=2"}) || c.User != "nobody" || c.Image != "nginx:1" {
		t.Errorf("config %+v", c)
	}
	if c.Labels[apps.LabelApp] != "a1" || c.Labels[apps.LabelOwner] != "1000" || c.Labels[apps.LabelSpecHash] != svc.SpecHash() {
		t.Errorf("labels %v", c.Labels)
	}
	if len(c.ExposedPorts) != 2 {
		t.Errorf("exposed %v", c.ExposedPorts)
	}
	wantPB := nat.PortMap{
		"80/tcp": {{HostPort: ""}, {HostIP: "127.0.0.1", HostPort: "8080"}},
		"53/udp": {{HostPort: "53"}},
	}
	if !reflect.DeepEqual(h.PortBindings, wantPB) {
		t.Errorf("bindings %v", h.PortBindings)
	}
	if h.NanoCPUs != 1.5e9 || h.Memory != 128<<20 ||
		h.RestartPolicy != (container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}) {
		t.Errorf("host config %+v", h)
	}
	if len(h.Mounts) != 3 || h.Mounts[0].Type != "bind" || !h.Mounts[0].ReadOnly || h.Mounts[1].Type != "volume" || h.Mounts[2].Type != "tmpfs" {
		t.Errorf("mounts %+v", h.Mounts)
	}

	for name, bad := range map[string]func(*apps.Service){
		"no image":     func(s *apps.Service) { s.Image = "" },
		"protocol":     func(s *apps.Service) { s.Ports = []apps.Port{{Target: 1, Protocol: "icmp"}} },
		"port range":   func(s *apps.Service) { s.Ports = []apps.Port{{Target: 70000, Protocol: "tcp"}} },
		"mount type":   func(s *apps.Service) { s.Mounts = []apps.Mount{{Type: "nfs", Target: "/x"}} },
		"bind source":  func(s *apps.Service) { s.Mounts = []apps.Mount{{Type: apps.MountBind, Target: "/x"}} },
		"restart":      func(s *apps.Service) { s.Restart.Condition = "always-ish" },
		"negative cpu": func(s *apps.Service) { s.CPUs = -1 },
	} {
		s := svc
		bad(&s)
		if _, err := containerSpec(app, &s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAuth(t *testing.T) {
	for ref, want := range map[string]string{
		"nginx":           "docker.io",
		"library/nginx:1": "docker.io",
		"docker.io/x/y@sha256:" + strings.Repeat("a", 64): "docker.io",
		"ghcr.io/x/y:1":                 "ghcr.io",
		"Registry.Example.com:5000/a/b": "registry.example.com:5000",
		"localhost:5000/x":              "localhost:5000",
	} {
		if got := ImageRegistry(ref); got != want {
			t.Errorf("ImageRegistry(%q) = %q, want %q", ref, got, want)
		}
	}
	a := Auth{
		"https://index.docker.io/v1/": {Username: "hub", Password: "p1"},
		"registry.example.com:5000":   {Username: "ex", Password: "p2"},
	}
	if c, ok := a.For("nginx:latest"); !ok || c.Username != "hub" {
		t.Errorf("hub: %v %v", c, ok)
	}
	if c, ok := a.For("registry.example.com:5000/team/app:2"); !ok || c.Username != "ex" {
		t.Errorf("example: %v %v", c, ok)
	}
	if _, ok := a.For("ghcr.io/x/y"); ok {
		t.Error("ghcr matched")
	}
	c := Credential{Username: "u", Password: "topsecret", ServerAddress: "r"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "cred", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), logged.String()} {
		if strings.Contains(s, "topsecret") {
			t.Errorf("password shown: %s", s)
		}
	}
}

func TestDrainJSONMessages(t *testing.T) {
	ok := `{"status":"Pulling"}` + "\n" + `{"status":"Done"}`
	if err := drainJSONMessages(strings.NewReader(ok)); err != nil {
		t.Errorf("ok stream: %v", err)
	}
	bad := `{"status":"Pulling"}{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`
	if err := drainJSONMessages(strings.NewReader(bad)); err == nil || err.Error() != "manifest unknown" {
		t.Errorf("error stream: %v", err)
	}
}
