package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
)

// swarmModule is a swarm-compatibility application of the test image.
func (e *e2e) swarmModule() map[string]any {
	compose := strings.ReplaceAll(`
services:
  web:
    image: IMAGE
    environment:
      - NUVLA_DEPLOYMENT_ID=${NUVLA_DEPLOYMENT_ID}
    ports: ["8080"]
    deploy:
      replicas: 2
`, "IMAGE", e.image)
	return map[string]any{
		"subtype": "application", "compatibility": "swarm",
		"id": "module/e2e-swarm", "name": "e2e-swarm", "path": "e2e/swarm",
		"content": map[string]any{"docker-compose": compose, "author": "e2e"},
	}
}

func swarmState(t testing.TB, cli *client.Client) (state swarm.LocalNodeState, manager bool) {
	t.Helper()
	info, err := cli.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.Swarm.LocalNodeState, info.Swarm.ControlAvailable
}

// A swarm app on a box that is not a swarm manager fails with a message
// that says how to enable Swarm.
func TestEndToEndSwarmNotManager(t *testing.T) {
	e := newE2E(t)
	if _, manager := swarmState(t, e.docker); manager {
		t.Skip("the Docker engine is a swarm manager here")
	}
	e.start()
	e.waitOnline()
	dep := e.cp.CreateDeployment(e.box, e.swarmModule())
	id, err := e.cp.StartDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	job := e.waitJob(id)
	if msg := fmt.Sprint(job["status-message"]); job["state"] != "FAILED" || !strings.Contains(msg, "docker swarm init") {
		t.Fatalf("job %v: %s", job["state"], msg)
	}
	if d, _ := e.cp.Resource(dep); d["state"] != "ERROR" {
		t.Fatalf("deployment state = %v, want ERROR", d["state"])
	}
}

// TestEndToEndSwarm deploys a swarm-compatibility application as a stack.
// It runs only where `docker swarm init --advertise-addr 127.0.0.1` works
// (done through the API); a swarm it created is left again afterwards.
func TestEndToEndSwarm(t *testing.T) {
	e := newE2E(t)
	ctx := context.Background()
	state, manager := swarmState(t, e.docker)
	switch {
	case manager:
		t.Log("using the existing swarm (this engine is a manager)")
	case state != swarm.LocalNodeStateInactive:
		t.Skipf("the Docker engine is in a swarm (%s) but not a manager", state)
	default:
		_, hadGW := e.docker.NetworkInspect(ctx, "docker_gwbridge", network.InspectOptions{})
		if _, err := e.docker.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
			t.Skipf("docker swarm init --advertise-addr 127.0.0.1 does not work here: %v", err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := e.docker.SwarmLeave(cctx, true); err != nil {
				t.Errorf("leave the swarm this test created: %v", err)
			}
			if hadGW != nil { // docker_gwbridge did not exist before
				_ = e.docker.NetworkRemove(cctx, "docker_gwbridge")
			}
		})
	}
	e.start()
	e.waitOnline()

	// The commission reported the swarm: Nuvla created its token credentials.
	eventually(t, 30*time.Second, "swarm token credentials", func() (bool, string) {
		toks := e.cp.Search("credential", "subtype='swarm-token'")
		return len(toks) >= 2, fmt.Sprint(len(toks))
	})

	dep := e.cp.CreateDeployment(e.box, e.swarmModule())
	uuid := strings.TrimPrefix(dep, "deployment/")
	enginetest.CleanupApp(t, e.docker, uuid)
	t.Cleanup(func() {
		ss, _ := e.docker.ServiceList(context.Background(), swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+uuid))})
		for _, s := range ss {
			_ = e.docker.ServiceRemove(context.Background(), s.ID)
		}
	})
	id, err := e.cp.StartDeployment(dep)
	e.runJob("start", id, err)

	ss, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+uuid))})
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Spec.Name != uuid+"_web" {
		t.Fatalf("stack services = %s", mustJSON(ss))
	}
	for _, p := range []struct{ name, want string }{
		{"web.node-id", "web"}, {"web.mode", "replicated"}, {"web.replicas.desired", "2"}, {"web.replicas.running", "2"},
		{"web.service-id", ss[0].ID[:12]}, {"web.image", e.image},
	} {
		if got, ok := e.param(dep, "web", p.name); !ok || got != p.want {
			t.Errorf("parameter %s = %q (exists %t), want %q", p.name, got, ok, p.want)
		}
	}
	if got, ok := e.param(dep, "web", "web.tcp.8080"); !ok || got == "" || got == "0" {
		t.Errorf("parameter web.tcp.8080 = %q (exists %t), want the published port", got, ok)
	}

	id, err = e.cp.StopDeployment(dep, map[string]any{"remove-volumes": true})
	e.runJob("stop", id, err)
	ss, _ = e.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+uuid))})
	nets, _ := e.docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+uuid))})
	if len(ss) != 0 || len(nets) != 0 {
		t.Fatalf("after stop: %d services, %d networks of the stack", len(ss), len(nets))
	}
}
