package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"

	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/engine/registrytest"
)

// TestEndToEndPrivateRegistry starts a component whose image is only in a
// private registry (a real one: distribution with htpasswd auth, on
// 127.0.0.1). The deployment references a Nuvla registry credential; berthd
// takes it from the job context, pulls with it and runs the container, and
// the password never reaches its log.
func TestEndToEndPrivateRegistry(t *testing.T) {
	e := newE2E(t)
	const user = "berth-e2e"
	pass := "e2e-registry-pass-" + hexID(8)
	reg := registrytest.Start(t, user, pass)
	tag := "e2e-" + hexID(6)
	ref := reg.Host() + "/team/testapp:" + tag
	reg.Push(t, e.docker, e.image, ref)
	ctx := context.Background()
	if _, err := e.docker.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil {
		t.Fatalf("remove local %s: %v", ref, err)
	}
	if _, err := e.docker.ImageInspect(ctx, ref); !engine.IsNotFound(err) {
		t.Fatalf("%s still present locally: %v", ref, err)
	}

	// Nuvla names the registry by URL; the image reference by host. Both
	// are the same registry to berth.
	endpoint := "http://" + reg.Host()
	if got, want := engine.RegistryHost(endpoint), reg.Host(); got != want {
		t.Fatalf("RegistryHost(%q) = %q, want %q", endpoint, got, want)
	}
	if got := engine.ImageRegistry(ref); got != reg.Host() {
		t.Fatalf("ImageRegistry(%q) = %q, want %q", ref, got, reg.Host())
	}

	e.start()
	e.waitOnline()

	deploy := func(password string) (dep, uuid string) {
		credID := e.cp.CreateRegistryCredential(endpoint, user, password)
		dep = e.cp.CreateDeployment(e.box, e.component(map[string]any{
			"image": map[string]any{"registry": reg.Host(), "repository": "team", "image-name": "testapp", "tag": tag},
		}))
		if !e.cp.SetResourceField(dep, "registries-credentials", []string{credID}) {
			t.Fatalf("set registries-credentials of %s", dep)
		}
		uuid = strings.TrimPrefix(dep, "deployment/")
		// Registered after Push: the containers go before the pulled image.
		enginetest.CleanupApp(t, e.docker, uuid)
		return dep, uuid
	}

	// A wrong password: the job fails and says why, without the password.
	wrong := "e2e-wrong-pass-" + hexID(8)
	bad, _ := deploy(wrong)
	badJob, err := e.cp.StartDeployment(bad)
	if err != nil {
		t.Fatal(err)
	}
	job := e.waitJob(badJob)
	msg, _ := job["status-message"].(string)
	if job["state"] != "FAILED" || !strings.Contains(msg, ref) || !strings.Contains(msg, "refused the credentials") || strings.Contains(msg, wrong) {
		t.Fatalf("start with a wrong password ended %v: %q; want FAILED, naming %s, saying the registry refused the credentials", job["state"], msg, ref)
	}

	dep, uuid := deploy(pass)
	jobID, err := e.cp.StartDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	if job := e.waitJob(jobID); job["state"] != "SUCCESS" {
		t.Fatalf("start job ended %v: %v", job["state"], job["status-message"])
	}
	cs := e.containers(uuid)
	if len(cs) != 1 || cs[0].State != "running" || cs[0].Image != ref {
		t.Fatalf("containers = %s, want one running from %s", mustJSON(cs), ref)
	}
	pulled, err := e.docker.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("the pulled image %s: %v", ref, err)
	}
	if cs[0].ImageID != pulled.ID {
		t.Errorf("container runs image %s, want the pulled %s", cs[0].ImageID, pulled.ID)
	}
	log := e.d.Log.String()
	if !strings.Contains(log, "pulled image") || !strings.Contains(log, ref) {
		t.Errorf("berthd's log does not show the pull of %s", ref)
	}

	stopID, err := e.cp.StopDeployment(dep, map[string]any{"remove-volumes": true})
	if err != nil {
		t.Fatal(err)
	}
	if job := e.waitJob(stopID); job["state"] != "SUCCESS" {
		t.Fatalf("stop job ended %v: %v", job["state"], job["status-message"])
	}
	if err := e.d.Stop(); err != nil {
		t.Errorf("berthd did not exit cleanly on SIGTERM: %v", err)
	}
	for _, secret := range []string{pass, wrong} {
		if strings.Contains(e.d.Log.String(), secret) {
			t.Fatalf("a registry password appears in berthd's log")
		}
	}
	t.Logf("wrong-password job: %s", msg)
}

func hexID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
