package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/engine/registrytest"
	"github.com/berth-edge/berth/daemon/internal/logring"
	"github.com/berth-edge/berth/daemon/internal/reconcile"
	"github.com/berth-edge/berth/daemon/internal/store"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dockerRig is a hostRig whose jobs use the real local Docker engine.
type dockerRig struct {
	*hostRig
	eng    *engine.Engine
	docker *client.Client
	image  string
	recon  *reconcile.Reconciler
}

func newDockerRig(t *testing.T, ring *logring.Ring) *dockerRig {
	t.Helper()
	if testing.Short() {
		t.Skip("uses the Docker engine: skipped with -short")
	}
	cli := enginetest.Docker(t)
	img := enginetest.BuildTestImage(t, enginetest.TestImage)
	eng, err := engine.New(context.Background(), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	d := &dockerRig{eng: eng, docker: cli, image: img}
	d.hostRig = newHostRig(t, HostOptions{Docker: eng, Log: ring}, func(st *store.Store) *reconcile.Reconciler {
		d.recon = reconcile.New(st, eng, slog.New(slog.DiscardHandler))
		return d.recon
	})
	return d
}

// startApp runs a one-service berth app of the test image, recorded as a
// Nuvla deployment that should be running, and returns its containers.
func (d *dockerRig) startApp(appID string, env map[string]string) []apps.Container {
	d.t.Helper()
	enginetest.CleanupApp(d.t, d.docker, appID)
	repo, tag, _ := strings.Cut(d.image, ":")
	content, _ := json.Marshal(map[string]any{
		"image":         map[string]any{"image-name": repo, "tag": tag},
		"architectures": []string{"amd64", "arm64"},
		"author":        "jobs-test",
		"ports":         []map[string]any{{"target-port": 8080}},
	})
	app, err := apps.FromComponent(apps.ComponentInput{AppID: appID, Name: "logs-app", Content: content, Env: env})
	if err != nil {
		d.t.Fatal(err)
	}
	if err := d.store.PutApp(store.AppRecord{App: *app, Desired: store.DesiredRunning, Source: store.SourceNuvla, DeploymentID: "deployment/" + appID}); err != nil {
		d.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := d.recon.Converge(ctx, app, apps.ModeStart, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	return cs
}

func TestCoeResourceActions(t *testing.T) {
	d := newDockerRig(t, nil)
	ctx := context.Background()
	const user = "coe-user"
	pass := "coe-pass-" + randHex(6)
	reg := registrytest.Start(t, user, pass)
	ref := reg.Ref("coe/testapp:" + randHex(4))
	reg.Push(t, d.docker, d.image, ref)
	if _, err := d.docker.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	cred := d.srv.CreateRegistryCredential("http://"+reg.Host(), user, pass)

	name := "berth-coe-" + randHex(4)
	if _, err := d.docker.VolumeCreate(ctx, volume.CreateOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.docker.NetworkCreate(ctx, name, network.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.docker.ContainerCreate(ctx, &container.Config{Image: d.image}, nil, nil, nil, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
		_ = d.docker.VolumeRemove(ctx, name, true)
		_ = d.docker.NetworkRemove(ctx, name)
	})
	managed := d.startApp("coe-"+randHex(4), nil)

	items := []map[string]any{
		{"resource": "image", "action": "pull", "id": ref, "credential": cred},
		{"resource": "container", "action": "remove", "id": name},
		{"resource": "volume", "action": "remove", "id": name},
		{"resource": "network", "action": "remove", "id": name},
		{"resource": "image", "action": "remove", "id": "berth-no-such-image:nope"},
		{"resource": "image", "action": "pull", "id": reg.Ref("coe/testapp:other")},
		{"resource": "container", "action": "remove", "id": managed[0].ID},
	}
	job := d.action("coe-resource-actions", map[string]any{"docker": items})
	msg := expectJob(t, d.run(job), "FAILED", `{"docker":[`)
	var res struct {
		Docker []coeResult `json:"docker"`
	}
	if err := json.Unmarshal([]byte(msg), &res); err != nil {
		t.Fatalf("status message %q: %v", msg, err)
	}
	if len(res.Docker) != len(items) {
		t.Fatalf("%d results for %d items: %s", len(res.Docker), len(items), msg)
	}
	for i, want := range []struct {
		ok   bool
		code int
		msg  string
	}{
		{true, 0, "pulled image " + ref},
		{true, 0, "removed container " + name},
		{true, 0, "removed volume " + name},
		{true, 0, "removed network " + name},
		{false, 404, "berth-no-such-image"},
		{false, 0, "refused an anonymous pull"},
		{true, 0, "which should be running: berthd will create it again"},
	} {
		got := res.Docker[i]
		if got.Success != want.ok || (want.code != 0 && got.ReturnCode != want.code) || (want.ok && got.ReturnCode != 0) || !strings.Contains(got.Message, want.msg) {
			t.Errorf("item %d = %+v, want success=%v code=%d message with %q", i, got, want.ok, want.code, want.msg)
		}
	}
	if strings.Contains(msg, pass) {
		t.Fatal("the registry password is in the status message")
	}
	if _, err := d.docker.ImageInspect(ctx, ref); err != nil {
		t.Errorf("pulled image missing: %v", err)
	}
	if _, err := d.docker.ContainerInspect(ctx, name); !engine.IsNotFound(err) {
		t.Errorf("container still there: %v", err)
	}
	if _, err := d.docker.VolumeInspect(ctx, name); !engine.IsNotFound(err) {
		t.Errorf("volume still there: %v", err)
	}
	if ok, _ := d.eng.NetworkExists(ctx, name); ok {
		t.Error("network still there")
	}

	// An all-good batch succeeds with the same JSON.
	job = d.action("coe-resource-actions", map[string]any{"docker": []map[string]any{{"resource": "image", "action": "remove", "id": ref}}})
	expectJob(t, d.run(job), "SUCCESS", `{"docker":[{"success":true,"return-code":0,"message":"removed image `+ref+`"}]}`)

	// A malformed payload runs nothing and names every problem.
	job = d.action("coe-resource-actions", map[string]any{"docker": []map[string]any{
		{"resource": "pod", "action": "remove", "id": "x"},
		{"resource": "volume", "action": "pull", "id": "x"},
		{"resource": "image", "action": "remove"},
	}})
	expectJob(t, d.run(job), "FAILED", `invalid coe_resource_actions payload: docker[0]: resource "pod" is not image, container, volume or network; docker[1]: action "pull" on a volume is not remove (only images can be pulled); docker[2]: id is missing`)
	job = d.action("coe-resource-actions", map[string]any{"kubernetes": []any{}})
	expectJob(t, d.run(job), "FAILED", `unknown field "kubernetes"`)
}

func TestFetchLogs(t *testing.T) {
	ring := logring.New(100)
	d := newDockerRig(t, ring)
	ring.Add(time.Now().Add(-time.Hour).UTC(), "level=INFO msg=\"an old line\"")
	ring.Add(time.Now().UTC(), "level=INFO msg=\"a recent line\"")

	// The box's own log: berthd's lines.
	r := d.owner("POST", d.box+"/create-log", map[string]any{"components": []string{"berthd", "nothing-here"}, "lines": 1}, 201)
	logID := r["resource-id"].(string)
	boxLog := logID
	job := d.owner("POST", logID+"/fetch", nil, 202)["location"].(string)
	expectJob(t, d.run(job), "SUCCESS", "sent berthd: 1 lines, nothing-here: 0 lines; nothing runs on this box for nothing-here")
	doc, _ := d.srv.Resource(logID)
	lines := doc["log"].(map[string]any)["berthd"].([]any)
	if len(lines) != 1 || !strings.HasSuffix(lines[0].(string), `msg="a recent line"`) {
		t.Fatalf("berthd lines = %v", lines)
	}
	ts, _, _ := strings.Cut(lines[0].(string), " ")
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || doc["last-timestamp"] != ts {
		t.Fatalf("line timestamp %q, last-timestamp %v", ts, doc["last-timestamp"])
	}
	// The next fetch sends only what came after last-timestamp.
	ring.Add(time.Now().UTC(), "level=INFO msg=\"a newer line\"")
	job = d.owner("POST", logID+"/fetch", nil, 202)["location"].(string)
	expectJob(t, d.run(job), "SUCCESS", "berthd: 1 lines")
	doc, _ = d.srv.Resource(logID)
	if lines := doc["log"].(map[string]any)["berthd"].([]any); len(lines) != 1 || !strings.Contains(lines[0].(string), "a newer line") {
		t.Fatalf("second fetch = %v", lines)
	}

	// A deployment's log: its service's container output.
	module := map[string]any{"subtype": "component", "id": "module/logs", "name": "logs-app", "content": map[string]any{}}
	dep := d.srv.CreateDeployment(d.box, module)
	cs := d.startApp(strings.TrimPrefix(dep, "deployment/"), nil)
	svc := cs[0].Service
	d.srv.SetResourceField(dep, "state", "STARTED")
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := d.eng.LogLines(context.Background(), cs[0].ID, time.Time{}, 0)
		if len(out) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r = d.owner("POST", dep+"/create-log", map[string]any{"components": []string{svc, "db"}}, 201)
	logID = r["resource-id"].(string)
	job = d.owner("POST", logID+"/fetch", nil, 202)["location"].(string)
	expectJob(t, d.run(job), "SUCCESS", "nothing runs on this box for db")
	doc, _ = d.srv.Resource(logID)
	lines = doc["log"].(map[string]any)[svc].([]any)
	if len(lines) == 0 || !strings.Contains(strings.Join(toStrings(lines), "\n"), "testapp: listening on") {
		t.Fatalf("%s lines = %v", svc, lines)
	}
	if doc["last-timestamp"] == nil {
		t.Fatalf("no last-timestamp: %v", doc)
	}
	// Fetching again asks Docker only for what came after last-timestamp:
	// the app printed nothing since.
	job = d.owner("POST", logID+"/fetch", nil, 202)["location"].(string)
	expectJob(t, d.run(job), "SUCCESS", "sent "+svc+": 0 lines")

	// A log job whose resource-log belongs to something else is refused.
	job = d.srv.EnqueueJob(boxLog, "fetch_deployment_log", nil, 2)
	expectJob(t, d.run(job), "FAILED", `belongs to "`+d.box+`", not to a deployment`)
}

func toStrings(l []any) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}
