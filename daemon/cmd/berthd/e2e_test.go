package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/berth-edge/berth/daemon/berthdtest"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/nuvla"
	"github.com/berth-edge/berth/daemon/internal/nuvla/nuvlatest"
)

// e2e is one control plane, one Docker engine and one berthd.
type e2e struct {
	t      testing.TB
	cp     *nuvlatest.Server
	docker *client.Client
	box    string
	image  string
	dir    string
	env    []string
	d      *berthdtest.Daemon
}

func newE2E(t testing.TB) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	docker := enginetest.Docker(t)
	image := enginetest.BuildTestImage(t, enginetest.TestImage)
	gw := bridgeGateway(t, docker)
	// Containers reach the control plane through the bridge gateway; bind
	// there only, never on every interface.
	cp, err := nuvlatest.New(nuvlatest.Options{Addr: gw + ":0", RefreshInterval: 1, HeartbeatInterval: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Close)
	box := cp.CreateNuvlabox("e2e")
	e := &e2e{t: t, cp: cp, docker: docker, box: box, image: image, dir: t.TempDir()}
	e.env = []string{"NUVLA_ENDPOINT=" + cp.URL(), "NUVLAEDGE_UUID=" + strings.TrimPrefix(box, "nuvlabox/")}
	return e
}

func (e *e2e) start() *berthdtest.Daemon {
	e.d = startDaemon(e.t, e.dir, e.env)
	return e.d
}

// waitOnline waits for the box to be commissioned and heartbeating.
func (e *e2e) waitOnline() {
	e.t.Helper()
	eventually(e.t, 30*time.Second, "box online", func() (bool, string) {
		doc, _ := e.cp.Resource(e.box)
		return doc["state"] == "COMMISSIONED" && doc["online"] == true, mustJSON(map[string]any{"state": doc["state"], "online": doc["online"]})
	})
}

// component returns a component module running the test app.
func (e *e2e) component(extra map[string]any) map[string]any {
	repo, tag, _ := strings.Cut(e.image, ":")
	content := map[string]any{
		"image":                   map[string]any{"image-name": repo, "tag": tag},
		"architectures":           []string{"amd64", "arm64"},
		"author":                  "e2e",
		"ports":                   []map[string]any{{"target-port": 8080}},
		"environmental-variables": []map[string]any{{"name": "GREETING", "value": "hello from nuvla"}, {"name": "TESTAPP_OUTPUT", "value": "admin-url=http://example.test/admin"}},
		"output-parameters":       []map[string]any{{"name": "admin-url", "description": "where to administer the app"}},
		"urls":                    [][]string{{"main", "http://${hostname}:${tcp.8080}/"}},
	}
	for k, v := range extra {
		content[k] = v
	}
	return map[string]any{"subtype": "component", "id": "module/e2e", "name": "e2e-app", "path": "e2e/app", "content": content}
}

func (e *e2e) waitJob(id string) map[string]any {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	job, err := e.cp.WaitJob(ctx, id)
	if err != nil {
		e.t.Fatalf("job %s: %v", id, err)
	}
	return job
}

func (e *e2e) containers(appID string) []container.Summary {
	e.t.Helper()
	cs, err := e.docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "berth.app="+appID))})
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

func (e *e2e) param(dep, node, name string) (string, bool) {
	doc, ok := e.cp.Resource(nuvla.ParameterID(dep, node, name))
	if !ok {
		return "", false
	}
	v, _ := doc["value"].(string)
	return v, true
}

// TestEndToEnd is the whole life of a component deployment on a real Docker
// engine, driven by the control plane through the real berthd binary.
func TestEndToEnd(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.waitOnline()

	dep := e.cp.CreateDeployment(e.box, e.component(nil))
	uuid := strings.TrimPrefix(dep, "deployment/")
	enginetest.CleanupApp(t, e.docker, uuid)
	jobID, err := e.cp.StartDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	job := e.waitJob(jobID)
	if job["state"] != "SUCCESS" {
		t.Fatalf("start job ended %v: %v", job["state"], job["status-message"])
	}
	if d, _ := e.cp.Resource(dep); d["state"] != "STARTED" {
		t.Fatalf("deployment state = %v, want STARTED", d["state"])
	}

	// Exactly one container, running, with the deployment's environment.
	cs := e.containers(uuid)
	if len(cs) != 1 || cs[0].State != "running" {
		t.Fatalf("containers = %s, want one running", mustJSON(cs))
	}
	ins, err := e.docker.ContainerInspect(context.Background(), cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range ins.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	depDoc, _ := e.cp.Resource(dep)
	creds, _ := depDoc["api-credentials"].(map[string]any)
	want := map[string]string{
		"NUVLA_DEPLOYMENT_ID":   dep,
		"NUVLA_DEPLOYMENT_UUID": uuid,
		"NUVLA_ENDPOINT":        e.cp.URL(),
		"NUVLA_API_KEY":         fmt.Sprint(creds["api-key"]),
		"NUVLA_API_SECRET":      fmt.Sprint(creds["api-secret"]),
		"GREETING":              "hello from nuvla",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("container env %s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"DATE_TIME", "TIMESTAMP"} {
		if env[k] == "" {
			t.Errorf("container env lacks %s", k)
		}
	}

	// The port parameter is the host port Docker chose, and it answers.
	bindings := ins.NetworkSettings.Ports["8080/tcp"]
	if len(bindings) == 0 {
		t.Fatalf("port 8080 not published: %s", mustJSON(ins.NetworkSettings.Ports))
	}
	hostPort := bindings[0].HostPort
	if got, _ := e.param(dep, uuid, "tcp.8080"); got != hostPort {
		t.Fatalf("parameter tcp.8080 = %q, want the host port %s", got, hostPort)
	}
	// The process inside may take a moment to listen after its start.
	var body []byte
	eventually(t, 15*time.Second, "the app to answer on its host port", func() (bool, string) {
		resp, err := http.Get("http://127.0.0.1:" + hostPort + "/")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200, resp.Status
	})
	var got struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal(body, &got); err != nil || got.Env["GREETING"] != "hello from nuvla" {
		t.Fatalf("app answered %s (%v)", body, err)
	}

	// The app publishes its own output parameter with its api key.
	eventually(t, 60*time.Second, "the app's output parameter", func() (bool, string) {
		v, ok := e.param(dep, "", "admin-url")
		return v == "http://example.test/admin", fmt.Sprintf("exists=%t value=%q", ok, v)
	})
	if v, ok := e.param(dep, "", "hostname"); !ok || v == "" {
		t.Errorf("hostname parameter = %q (exists %t), want the box address", v, ok)
	}

	// The local API shows the app with its port and resolved URL.
	// Other tests may share this Docker engine: look for this app only.
	app, err := e.d.Client().App(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	if app.State != "running" || app.Source != "nuvla" || !strings.Contains(app.URLs["main"], ":"+hostPort+"/") {
		t.Fatalf("berth apps %s = %s", uuid, mustJSON(app))
	}

	// Stop: containers gone, credentials deleted, state STOPPED.
	stopID, err := e.cp.StopDeployment(dep, map[string]any{"remove-volumes": true})
	if err != nil {
		t.Fatal(err)
	}
	if job := e.waitJob(stopID); job["state"] != "SUCCESS" {
		t.Fatalf("stop job ended %v: %v", job["state"], job["status-message"])
	}
	if cs := e.containers(uuid); len(cs) != 0 {
		t.Fatalf("containers left after stop: %s", mustJSON(cs))
	}
	if d, _ := e.cp.Resource(dep); d["state"] != "STOPPED" {
		t.Fatalf("deployment state = %v, want STOPPED", d["state"])
	}
	if left := e.cp.Search("credential", "parent='"+dep+"'"); len(left) != 0 {
		t.Fatalf("deployment credentials left: %s", mustJSON(left))
	}
	if app, err := e.d.Client().App(context.Background(), uuid); err == nil {
		t.Fatalf("berth apps still lists %s after stop: %s", uuid, mustJSON(app))
	}

	// No secret reached the log.
	if s := fmt.Sprint(creds["api-secret"]); s == "" || strings.Contains(e.d.Log.String(), s) {
		t.Fatalf("the deployment's api secret appears in berthd's log")
	}
	if err := e.d.Stop(); err != nil {
		t.Fatalf("berthd did not exit cleanly on SIGTERM: %v", err)
	}
}

// Bad jobs fail with a message that says what was wrong, and berthd goes on.
func TestBadJobsFailClearly(t *testing.T) {
	e := newE2E(t)
	e.start()
	e.waitOnline()
	dep := e.cp.CreateDeployment(e.box, e.component(map[string]any{"ports": []map[string]any{{"target-port": 99999}}}))
	enginetest.CleanupApp(t, e.docker, strings.TrimPrefix(dep, "deployment/"))

	// An NFS server that does not answer: port 1 on loopback is closed.
	nfs := e.cp.CreateDeployment(e.box, e.component(map[string]any{"mounts": []map[string]any{{
		"mount-type": "volume", "target": "/data", "source": "exports",
		"volume-options": map[string]string{"type": "nfs", "o": "addr=127.0.0.1,port=1", "device": ":/exports"},
	}}}))
	enginetest.CleanupApp(t, e.docker, strings.TrimPrefix(nfs, "deployment/"))

	tests := []struct {
		name    string
		enqueue func() string
		want    string
	}{
		{"malformed module", func() string { id, _ := e.cp.StartDeployment(dep); return id }, "target-port 99999 is not between 1 and 65535"},
		{"NFS server down", func() string { id, _ := e.cp.StartDeployment(nfs); return id }, "NFS server 127.0.0.1:1"},
		{"malformed payload", func() string { return e.cp.EnqueueJob(dep, "stop_deployment", "{not json", 2) }, "malformed job payload"},
		{"wrong payload type", func() string {
			return e.cp.EnqueueJob(dep, "stop_deployment", `{"remove-volumes":"yes"}`, 2)
		}, "remove-volumes must be a bool"},
		{"unknown action", func() string { return e.cp.EnqueueJob(e.box, "make_coffee", nil, 2) }, "not supported by berthd: make_coffee"},
		{"wrong version", func() string { return e.cp.EnqueueJob(dep, "deployment_state", nil, 1) }, "job version 1 is not supported"},
		{"wrong target", func() string { return e.cp.EnqueueJob(e.box, "start_deployment", nil, 2) }, "needs a deployment as target-resource"},
	}
	for _, tt := range tests {
		job := e.waitJob(tt.enqueue())
		msg := fmt.Sprint(job["status-message"])
		if job["state"] != "FAILED" || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: job ended %v with %q, want FAILED mentioning %q", tt.name, job["state"], msg, tt.want)
		}
		if rc, _ := job["return-code"].(float64); rc == 0 {
			t.Errorf("%s: return-code 0 on a failed job", tt.name)
		}
	}
	for _, d := range []string{dep, nfs} {
		if n := len(e.containers(strings.TrimPrefix(d, "deployment/"))); n != 0 {
			t.Fatalf("a failed start of %s left %d containers", d, n)
		}
		if doc, _ := e.cp.Resource(d); doc["state"] != "ERROR" {
			t.Errorf("deployment %s after a failed start is %v, want ERROR", d, doc["state"])
		}
	}

	// The daemon is still working: a good deployment starts.
	good := e.cp.CreateDeployment(e.box, e.component(nil))
	enginetest.CleanupApp(t, e.docker, strings.TrimPrefix(good, "deployment/"))
	id, _ := e.cp.StartDeployment(good)
	if job := e.waitJob(id); job["state"] != "SUCCESS" {
		t.Fatalf("good job after bad ones ended %v: %v", job["state"], job["status-message"])
	}
}

// Killing berthd in the middle of a start and restarting it ends with
// exactly one container and a final job state.
func TestKilledDuringStart(t *testing.T) {
	e := newE2E(t)
	d := e.start()
	e.waitOnline()
	dep := e.cp.CreateDeployment(e.box, e.component(nil))
	uuid := strings.TrimPrefix(dep, "deployment/")
	enginetest.CleanupApp(t, e.docker, uuid)
	jobID, err := e.cp.StartDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "job RUNNING", func() (bool, string) {
		j, _ := e.cp.Resource(jobID)
		return j["state"] == "RUNNING", fmt.Sprint(j["state"])
	})
	d.Kill()

	d2 := e.start()
	job := e.waitJob(jobID)
	if job["state"] != "SUCCESS" {
		t.Fatalf("job after restart ended %v: %v", job["state"], job["status-message"])
	}
	if !strings.Contains(d2.Log.String(), "resuming job from the journal") {
		t.Errorf("the restarted berthd did not resume the interrupted job from its journal")
	}
	cs := e.containers(uuid)
	if len(cs) != 1 || cs[0].State != "running" {
		t.Fatalf("containers after restart = %s, want exactly one running", mustJSON(cs))
	}
	// Restarting berthd again does not restart the app.
	startedAt := cs[0].Created
	e.d.Stop()
	e.start()
	time.Sleep(2 * time.Second)
	cs = e.containers(uuid)
	if len(cs) != 1 || cs[0].Created != startedAt || cs[0].State != "running" {
		t.Fatalf("a berthd restart touched the app: %s", mustJSON(cs))
	}
	if v, _ := e.param(dep, uuid, "tcp.8080"); v == "" || v != strconv.Itoa(int(cs[0].Ports[0].PublicPort)) {
		t.Fatalf("tcp.8080 = %q after restart, container ports %s", v, mustJSON(cs[0].Ports))
	}
}

// The link survives an expired session (one re-login), follows interval
// changes made in Nuvla, and stops cleanly when the box is decommissioned,
// while the apps keep running.
func TestControlPlaneLink(t *testing.T) {
	e := newE2E(t)
	d := e.start()
	e.waitOnline()
	dep := e.cp.CreateDeployment(e.box, e.component(nil))
	uuid := strings.TrimPrefix(dep, "deployment/")
	enginetest.CleanupApp(t, e.docker, uuid)
	id, _ := e.cp.StartDeployment(dep)
	if job := e.waitJob(id); job["state"] != "SUCCESS" {
		t.Fatalf("start: %v %v", job["state"], job["status-message"])
	}

	logins := func() int {
		n := 0
		for _, r := range e.cp.Requests() {
			if r.Method == "POST" && r.Path == "/api/session" && strings.Contains(r.Body, e.boxKey()) && r.Status == 201 {
				n++
			}
		}
		return n
	}
	before := logins()
	e.cp.ExpireSessions()
	eventually(t, 15*time.Second, "a re-login after the session expired", func() (bool, string) {
		return logins() == before+1, fmt.Sprint(logins())
	})
	eventually(t, 10*time.Second, "heartbeats after the re-login", func() (bool, string) {
		st, err := d.Client().Status(context.Background())
		return err == nil && st.State == "online" && time.Since(st.Nuvla.LastHeartbeat) < 3*time.Second, mustJSON(st.Nuvla)
	})

	e.cp.SetNuvlaboxField(e.box, "heartbeat-interval", 17)
	eventually(t, 10*time.Second, "the new heartbeat interval", func() (bool, string) {
		st, _ := d.Client().Status(context.Background())
		return st.Nuvla != nil && st.Nuvla.HeartbeatInterval == 17, mustJSON(st.Nuvla)
	})

	e.cp.Decommission(e.box)
	eventually(t, 60*time.Second, "state decommissioned", func() (bool, string) {
		st, _ := d.Client().Status(context.Background())
		return st.State == "decommissioned", st.State + ": " + st.Message
	})
	if cs := e.containers(uuid); len(cs) != 1 || cs[0].State != "running" {
		t.Fatalf("decommissioning stopped the apps: %s", mustJSON(cs))
	}
	// berthd stays up and answers.
	if _, err := d.Client().Apps(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// boxKey is the api key berthd received at activation.
func (e *e2e) boxKey() string {
	doc, _ := e.cp.Resource(e.box)
	k, _ := doc["credential-api-key"].(string)
	return k
}
