package engine

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// composeApp writes a compose file into a temporary directory and converts it.
func (h *harness) composeApp(t *testing.T, yaml string) *apps.App {
	t.Helper()
	dir := t.TempDir()
	yaml = strings.ReplaceAll(yaml, "IMAGE", h.image)
	if err := os.WriteFile(filepath.Join(dir, apps.ComposeFileName), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := apps.FromCompose(t.Context(), apps.ComposeInput{AppID: h.appID, Dir: dir})
	if err != nil {
		t.Fatalf("FromCompose: %v", err)
	}
	return app
}

func (h *harness) converge(ctx context.Context, app *apps.App) error {
	actual, err := h.e.List(ctx, app.ID)
	if err != nil {
		return err
	}
	return h.e.Apply(ctx, app, apps.Plan(app, actual, apps.ModeStart), nil)
}

const aliasCompose = `
services:
  api:
    image: IMAGE
    networks:
      back:
        aliases: [backend]
    healthcheck:
      test: ["CMD", "/testapp", "get", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      timeout: 2s
      retries: 20
  web:
    image: IMAGE
    networks: [back, default]
    ports: ["8080"]
    depends_on:
      api:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "/testapp", "get", "http://backend:8080/healthz"]
      interval: 1s
      timeout: 2s
      retries: 30
    volumes:
      - data:/data
networks:
  back: {}
volumes:
  data: {}
`

// A compose app on the real engine: web starts only once api is healthy,
// reaches api by its alias on the project network, and networks, volumes
// and containers carry the labels docker compose queries.
func TestComposeNetworksAliasesHealthy(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	app := h.composeApp(t, aliasCompose)
	if err := h.converge(ctx, app); err != nil {
		t.Fatalf("apply: %v\n%s", err, h.logs)
	}
	cli := h.e.Client()
	api, err := cli.ContainerInspect(ctx, apps.ContainerName(h.appID, "api"))
	if err != nil {
		t.Fatal(err)
	}
	web, err := cli.ContainerInspect(ctx, apps.ContainerName(h.appID, "web"))
	if err != nil {
		t.Fatal(err)
	}
	// web started after api's first passing health check.
	var healthyAt time.Time
	for _, l := range api.State.Health.Log {
		if l.ExitCode == 0 {
			healthyAt = l.End
			break
		}
	}
	webStart, _ := time.Parse(time.RFC3339Nano, web.State.StartedAt)
	if healthyAt.IsZero() || webStart.Before(healthyAt) {
		t.Errorf("web started at %s, api first healthy at %s", webStart, healthyAt)
	}
	// web reaches api as "backend": its own health check says so.
	deadline := time.Now().Add(60 * time.Second)
	for {
		web, err = cli.ContainerInspect(ctx, web.ID)
		if err != nil {
			t.Fatal(err)
		}
		if web.State.Health != nil && web.State.Health.Status == container.Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web never became healthy (cannot reach api by alias?): %+v", web.State.Health)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got := len(web.NetworkSettings.Networks); got != 2 {
		t.Errorf("web is on %d networks, want 2: %v", got, web.NetworkSettings.Networks)
	}

	// The labels docker compose looks for.
	project := filters.NewArgs(filters.Arg("label", apps.LabelComposeProject+"="+h.appID))
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: project})
	if err != nil {
		t.Fatal(err)
	}
	gotNets := map[string]string{}
	for _, n := range nets {
		gotNets[n.Name] = n.Labels[apps.LabelComposeNetwork]
	}
	if gotNets[h.appID+"_back"] != "back" || gotNets[h.appID+"_default"] != "default" || len(gotNets) != 2 {
		t.Errorf("project networks %v", gotNets)
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: project})
	if err != nil {
		t.Fatal(err)
	}
	if len(vols.Volumes) != 1 || vols.Volumes[0].Name != h.appID+"_data" || vols.Volumes[0].Labels[apps.LabelComposeVolume] != "data" {
		t.Errorf("project volumes %+v", vols.Volumes)
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", apps.LabelComposeProject+"="+h.appID),
		filters.Arg("label", apps.LabelComposeOneoff+"=False"),
	)})
	if err != nil {
		t.Fatal(err)
	}
	svcs := map[string]bool{}
	for _, c := range cs {
		svcs[c.Labels[apps.LabelComposeService]] = c.Labels[apps.LabelComposeNumber] == "1" && c.Labels[apps.LabelComposeFiles] != ""
	}
	if !svcs["api"] || !svcs["web"] || len(svcs) != 2 {
		t.Errorf("compose containers %v", svcs)
	}

	// Converging again changes nothing.
	if err := h.converge(ctx, app); err != nil {
		t.Fatal(err)
	}
	if again, _ := cli.ContainerInspect(ctx, web.ID); again.ID != web.ID {
		t.Errorf("web was recreated by a no-op converge")
	}

	// Stop: containers and networks go, the volume stays; then it goes too.
	if err := h.e.RemoveApp(ctx, h.appID, false, false); err != nil {
		t.Fatal(err)
	}
	if nets, _ := cli.NetworkList(ctx, network.ListOptions{Filters: project}); len(nets) != 0 {
		t.Errorf("networks left after stop: %v", nets)
	}
	if vols, _ := cli.VolumeList(ctx, volume.ListOptions{Filters: project}); len(vols.Volumes) != 1 {
		t.Errorf("volume removed by a stop without remove-volumes: %v", vols.Volumes)
	}
	if err := h.e.RemoveApp(ctx, h.appID, true, false); err != nil {
		t.Fatal(err)
	}
	if vols, _ := cli.VolumeList(ctx, volume.ListOptions{Filters: project}); len(vols.Volumes) != 0 {
		t.Errorf("volume kept by remove-volumes: %v", vols.Volumes)
	}
}

// A dependency that turns unhealthy fails the apply with a clear error, and
// the dependent is never started.
func TestComposeDependencyUnhealthy(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	app := h.composeApp(t, `
services:
  api:
    image: IMAGE
    healthcheck:
      test: ["CMD", "/testapp", "get", "http://127.0.0.1:1/"]
      interval: 1s
      retries: 1
  web:
    image: IMAGE
    depends_on:
      api: {condition: service_healthy}
`)
	err := h.converge(ctx, app)
	if err == nil || !strings.Contains(err.Error(), "web depends on api") || !strings.Contains(err.Error(), "unhealthy") {
		t.Fatalf("apply: got %v, want an unhealthy dependency error", err)
	}
	if ins, err := h.e.Client().ContainerInspect(ctx, apps.ContainerName(h.appID, "web")); err == nil && ins.State.Running {
		t.Errorf("web runs although api is unhealthy")
	}
}

// A dependency that never becomes healthy times out with the state it is in.
func TestComposeDependencyTimeout(t *testing.T) {
	h := newHarness(t)
	h.e.depTimeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	app := h.composeApp(t, `
services:
  api:
    image: IMAGE
    healthcheck:
      test: ["CMD", "/testapp", "get", "http://127.0.0.1:8080/healthz"]
      interval: 1m
      start_period: 1m
  web:
    image: IMAGE
    depends_on:
      api: {condition: service_healthy}
`)
	err := h.converge(ctx, app)
	if err == nil || !strings.Contains(err.Error(), "after 2s it is health starting") {
		t.Fatalf("apply: got %v, want a timeout error", err)
	}
}

// An NFS volume whose server does not answer fails the apply before
// anything (container, network, volume) is created.
func TestComposeNFSPreflight(t *testing.T) {
	h := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // nothing answers there any more
	app := h.composeApp(t, `
services:
  reader:
    image: IMAGE
    volumes: [shared:/mnt]
volumes:
  shared:
    driver_opts:
      type: nfs
      o: addr=127.0.0.1,port=`+strconv.Itoa(port)+`,nfsvers=4
      device: ":/exports"
`)
	err = h.converge(t.Context(), app)
	if err == nil || !strings.Contains(err.Error(), "NFS server 127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("apply: got %v, want the NFS pre-flight error", err)
	}
	cli := h.e.Client()
	f := filters.NewArgs(filters.Arg("label", apps.LabelApp+"="+h.appID))
	cs, _ := cli.ContainerList(t.Context(), container.ListOptions{All: true, Filters: f})
	ns, _ := cli.NetworkList(t.Context(), network.ListOptions{Filters: f})
	vs, _ := cli.VolumeList(t.Context(), volume.ListOptions{Filters: f})
	if len(cs)+len(ns)+len(vs.Volumes) != 0 {
		t.Errorf("pre-flight failure left %d containers, %d networks, %d volumes", len(cs), len(ns), len(vs.Volumes))
	}
}
