package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
)

// composeApp is a two-service compose app of the test image: api (with a
// named volume and a health check) and web, which starts once api is
// healthy and references ${NUVLA_DEPLOYMENT_ID}.
const composeApp = `
services:
  api:
    image: IMAGE
    environment:
      ROLE: api
      GREETING: ${GREETING}
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD", "/testapp", "get", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      retries: 30
  web:
    image: IMAGE
    environment:
      - NUVLA_DEPLOYMENT_ID=${NUVLA_DEPLOYMENT_ID}
      - VERSION=VERSION_VALUE
    env_file: app.env
    ports: ["8080"]
    depends_on:
      api:
        condition: service_healthy
volumes:
  data: {}
`

func (e *e2e) application(version string) map[string]any {
	compose := strings.NewReplacer("IMAGE", e.image, "VERSION_VALUE", version).Replace(composeApp)
	return map[string]any{
		"subtype": "application", "compatibility": "docker-compose",
		"id": "module/e2e-compose", "name": "e2e-compose", "path": "e2e/compose",
		"content": map[string]any{
			"docker-compose":          compose,
			"author":                  "e2e",
			"environmental-variables": []map[string]any{{"name": "GREETING", "value": "hello compose"}},
			"output-parameters":       []map[string]any{{"name": "admin-url", "description": "where to administer the app"}},
			"files":                   []map[string]any{{"file-name": "app.env", "file-content": "FROM_FILE=yes\n"}},
		},
	}
}

func (e *e2e) runJob(what string, id string, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	if job := e.waitJob(id); job["state"] != "SUCCESS" {
		e.t.Fatalf("%s job ended %v: %v", what, job["state"], job["status-message"])
	}
}

// TestEndToEndCompose is the life of a compose application through the
// real berthd: start, per-service parameters, update of one service, stop
// keeping volumes, stop removing them.
func TestEndToEndCompose(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.waitOnline()
	ctx := context.Background()

	dep := e.cp.CreateDeployment(e.box, e.application("1"))
	uuid := strings.TrimPrefix(dep, "deployment/")
	enginetest.CleanupApp(t, e.docker, uuid)
	id, err := e.cp.StartDeployment(dep)
	e.runJob("start", id, err)
	if d, _ := e.cp.Resource(dep); d["state"] != "STARTED" {
		t.Fatalf("deployment state = %v, want STARTED", d["state"])
	}

	byService := func() map[string]string {
		out := map[string]string{}
		for _, c := range e.containers(uuid) {
			if c.State != "running" {
				t.Errorf("container %s is %s", c.Names, c.State)
			}
			if c.Labels["com.docker.compose.project"] != uuid {
				t.Errorf("container %s has compose project %q", c.Names, c.Labels["com.docker.compose.project"])
			}
			out[c.Labels["com.docker.compose.service"]] = c.ID
		}
		return out
	}
	first := byService()
	if len(first) != 2 || first["api"] == "" || first["web"] == "" {
		t.Fatalf("containers by service = %v, want api and web", first)
	}

	// Environment: interpolated from the deployment, env_file from the
	// module's files; NUVLA_* only where the file references them.
	envOf := func(id string) map[string]string {
		ins, err := e.docker.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, kv := range ins.Config.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		return env
	}
	web, api := envOf(first["web"]), envOf(first["api"])
	if web["NUVLA_DEPLOYMENT_ID"] != dep || web["FROM_FILE"] != "yes" || web["VERSION"] != "1" {
		t.Errorf("web env = %v", web)
	}
	if api["GREETING"] != "hello compose" || api["NUVLA_DEPLOYMENT_ID"] != "" || api["NUVLA_API_SECRET"] != "" {
		t.Errorf("api env = %v", api)
	}

	// Per-service parameters with node-id = service.
	ins, err := e.docker.ContainerInspect(ctx, first["web"])
	if err != nil {
		t.Fatal(err)
	}
	hostPort := ins.NetworkSettings.Ports["8080/tcp"][0].HostPort
	for _, p := range []struct{ node, name, want string }{
		{"web", "web.node-id", "web"},
		{"web", "web.service-id", first["web"]},
		{"web", "web.image", e.image},
		{"web", "web.tcp.8080", hostPort},
		{"api", "api.node-id", "api"},
		{"api", "api.service-id", first["api"]},
	} {
		if got, ok := e.param(dep, p.node, p.name); !ok || got != p.want {
			t.Errorf("parameter %s (node %s) = %q (exists %t), want %q", p.name, p.node, got, ok, p.want)
		}
	}
	if _, ok := e.param(dep, "", "admin-url"); !ok {
		t.Errorf("output parameter admin-url not created")
	}
	eventually(t, 15*time.Second, "web to answer on its host port", func() (bool, string) {
		resp, err := http.Get("http://127.0.0.1:" + hostPort + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})

	// Update with one changed service: only web is recreated.
	if !e.cp.SetResourceField(dep, "module", e.application("2")) {
		t.Fatal("cannot change the deployment's module")
	}
	id, err = e.cp.UpdateDeployment(dep)
	e.runJob("update", id, err)
	second := byService()
	if second["api"] != first["api"] {
		t.Errorf("api was recreated by an update that did not change it")
	}
	if second["web"] == first["web"] || second["web"] == "" {
		t.Errorf("web was not recreated by an update that changed it")
	}
	if got := envOf(second["web"])["VERSION"]; got != "2" {
		t.Errorf("web VERSION = %q after the update, want 2", got)
	}
	if got, _ := e.param(dep, "web", "web.service-id"); got != second["web"] {
		t.Errorf("web.service-id = %q after the update, want %q", got, second["web"])
	}

	project := filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+uuid))
	counts := func() (nets, vols int) {
		ns, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: project})
		if err != nil {
			t.Fatal(err)
		}
		vs, err := e.docker.VolumeList(ctx, volume.ListOptions{Filters: project})
		if err != nil {
			t.Fatal(err)
		}
		return len(ns), len(vs.Volumes)
	}
	if n, v := counts(); n != 1 || v != 1 {
		t.Fatalf("project has %d networks and %d volumes, want 1 and 1", n, v)
	}

	// Stop: containers and networks go, the volume stays.
	id, err = e.cp.StopDeployment(dep, nil)
	e.runJob("stop", id, err)
	if cs := e.containers(uuid); len(cs) != 0 {
		t.Fatalf("containers left after stop: %s", mustJSON(cs))
	}
	if n, v := counts(); n != 0 || v != 1 {
		t.Fatalf("after stop: %d networks and %d volumes, want 0 and 1", n, v)
	}

	// Start again (the volume is reused), then stop with remove-volumes.
	id, err = e.cp.StartDeployment(dep)
	e.runJob("second start", id, err)
	if got := byService(); len(got) != 2 {
		t.Fatalf("containers after the second start: %v", got)
	}
	id, err = e.cp.StopDeployment(dep, map[string]any{"remove-volumes": true})
	e.runJob("stop removing volumes", id, err)
	if n, v := counts(); n != 0 || v != 0 || len(e.containers(uuid)) != 0 {
		t.Fatalf("after stop with remove-volumes: %d networks, %d volumes, %d containers", n, v, len(e.containers(uuid)))
	}
	if d, _ := e.cp.Resource(dep); d["state"] != "STOPPED" {
		t.Fatalf("deployment state = %v, want STOPPED", d["state"])
	}
}

// An application with keys berthd does not support fails before anything
// is created, naming each key and service.
func TestEndToEndComposeUnsupported(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.waitOnline()
	mod := e.application("1")
	mod["content"].(map[string]any)["docker-compose"] = "services:\n  app:\n    build: .\n  db:\n    image: " + e.image + "\n    ipc: host\n"
	dep := e.cp.CreateDeployment(e.box, mod)
	uuid := strings.TrimPrefix(dep, "deployment/")
	enginetest.CleanupApp(t, e.docker, uuid)
	id, err := e.cp.StartDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	job := e.waitJob(id)
	msg := fmt.Sprint(job["status-message"])
	if job["state"] != "FAILED" || !strings.Contains(msg, "service app: key build is not supported") || !strings.Contains(msg, "service db: key ipc is not supported") {
		t.Fatalf("job %v: %s", job["state"], msg)
	}
	if cs := e.containers(uuid); len(cs) != 0 {
		t.Fatalf("containers created for a rejected app: %s", mustJSON(cs))
	}
}
