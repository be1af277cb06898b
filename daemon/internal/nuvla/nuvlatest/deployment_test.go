package nuvlatest

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/internal/nuvla"
)

var testModule = map[string]any{
	"subtype": "component",
	"content": map[string]any{
		"image":         map[string]any{"image-name": "nginx", "tag": "1.27"},
		"architectures": []any{"amd64"},
		"author":        "test",
		"ports":         []any{map[string]any{"target-port": 80}},
	},
}

func TestDeploymentStart(t *testing.T) {
	srv := newServer(t, Options{NoDeploymentStateJobs: true})
	box, c := commissionedBox(t, srv)
	dep := srv.CreateDeployment(box, testModule)
	d, _ := srv.Resource(dep)
	swarmCreds := srv.Search("credential", "subtype='infrastructure-service-swarm'")
	if len(swarmCreds) != 1 || d["parent"] != swarmCreds[0]["id"] || d["nuvlabox"] != box ||
		d["state"] != "CREATED" || d["execution-mode"] != "pull" || d["api-endpoint"] != srv.URL() {
		t.Fatalf("deployment = %v", d)
	}
	// The box can read the deployment but cannot start it.
	c.expect(200, c.do("GET", "/api/"+dep, nil))
	c.expect(403, c.do("POST", "/api/"+dep+"/start", nil))

	job, err := srv.StartDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	d, _ = srv.Resource(dep)
	creds := mapOf(d["api-credentials"])
	key, secret := str(creds["api-key"]), str(creds["api-secret"])
	if d["state"] != "PENDING" || !strings.HasPrefix(key, "credential/") || !secretRE.MatchString(secret) {
		t.Fatalf("started deployment = %v", d)
	}
	if got := srv.Search("credential", "parent='"+dep+"'"); len(got) != 1 || got[0]["id"] != key {
		t.Fatalf("deployment credentials = %v", got)
	}
	j, _ := srv.Resource(job)
	if j["action"] != "start_deployment" || j["priority"] != 50.0 || j["execution-mode"] != "pull" ||
		mapOf(j["target-resource"])["href"] != dep {
		t.Fatalf("start job = %v", j)
	}
	if _, err := srv.StartDeployment(dep); err == nil {
		t.Fatal("second start from PENDING succeeded")
	}
	r := c.expect(200, c.do("POST", "/api/"+box+"/heartbeat", nil))
	if got := ids(r.body["jobs"]); len(got) != 1 || got[0] != job {
		t.Fatalf("heartbeat jobs = %v", got)
	}

	// get-context: only for the box.
	r = c.expect(200, c.do("POST", "/api/"+job+"/get-context", nil))
	ctxDoc := r.body
	nb, _ := srv.Resource(box)
	for _, id := range []string{dep, str(d["parent"]), box, str(nb["nuvlabox-status"])} {
		if mapOf(ctxDoc[id]) == nil {
			t.Fatalf("context misses %s: %s", id, r.raw)
		}
	}
	if len(ctxDoc) != 5 || mapOf(ctxDoc[dep])["acl"] != nil {
		t.Fatalf("context = %s", r.raw)
	}

	// The deployment key logs in and reports.
	dc := newClient(t, srv)
	dc.expect(201, login(t, dc, key, secret))
	dc.expect(403, dc.do("POST", "/api/"+job+"/get-context", nil))
	dc.expect(400, dc.do("PUT", "/api/"+dep, map[string]any{"state": "RUNNING"}))
	r = dc.expect(200, dc.do("PUT", "/api/"+dep, map[string]any{"state": "STARTED", "nuvlabox": "nuvlabox/other"}))
	if r.body["state"] != "STARTED" || r.body["nuvlabox"] != box {
		t.Fatalf("deployment edit = %s", r.raw)
	}
	c.expect(200, c.do("PUT", "/api/"+job, map[string]any{"state": "SUCCESS", "return-code": 0}))

	// Stop with delete: the deployment disappears when the job succeeds.
	stop, err := srv.StopDeployment(dep, map[string]any{"delete": true, "remove-volumes": true})
	if err != nil {
		t.Fatal(err)
	}
	j, _ = srv.Resource(stop)
	var payload map[string]any
	if err := json.Unmarshal([]byte(str(j["payload"])), &payload); err != nil || payload["delete"] != true {
		t.Fatalf("stop payload = %v (%v)", j["payload"], err)
	}
	if st := srv.NuvlaboxState(box); st != "COMMISSIONED" {
		t.Fatal(st)
	}
	d, _ = srv.Resource(dep)
	if d["state"] != "STOPPING" {
		t.Fatalf("state after stop = %v", d["state"])
	}
	c.expect(200, c.do("PUT", "/api/"+stop, map[string]any{"state": "SUCCESS", "return-code": 0}))
	if _, ok := srv.Resource(dep); ok {
		t.Fatal("deployment not deleted after stop with delete")
	}
	if got := srv.Search("credential", "parent='"+dep+"'"); len(got) != 0 {
		t.Fatalf("deployment credentials left: %v", got)
	}
}

func TestDeploymentFailedJobKeepsState(t *testing.T) {
	srv := newServer(t, Options{NoDeploymentStateJobs: true})
	box, c := commissionedBox(t, srv)
	dep := srv.CreateDeployment(box, testModule)
	job, err := srv.StartDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	c.expect(200, c.do("PUT", "/api/"+dep, map[string]any{"state": "ERROR"}))
	c.expect(200, c.do("PUT", "/api/"+job, map[string]any{"state": "FAILED", "return-code": 1}))
	d, _ := srv.Resource(dep)
	if d["state"] != "ERROR" {
		t.Fatalf("state = %v", d["state"])
	}
	upd, err := srv.UpdateDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := srv.Resource(upd)
	if d, _ := srv.Resource(dep); d["state"] != "UPDATING" || j["action"] != "update_deployment" {
		t.Fatalf("update: %v %v", d["state"], j["action"])
	}
	// Stopped deployments restart with a fresh key and no old parameters.
	c.expect(200, c.do("PUT", "/api/"+dep, map[string]any{"state": "STOPPED"}))
	c.expect(201, c.do("POST", "/api/deployment-parameter", map[string]any{"parent": dep, "name": "hostname", "value": "h"}))
	old := mapOf(d["api-credentials"])["api-key"]
	if _, err := srv.StartDeployment(dep); err != nil {
		t.Fatal(err)
	}
	d, _ = srv.Resource(dep)
	if mapOf(d["api-credentials"])["api-key"] == old {
		t.Fatal("restart reused the api key")
	}
	if got := srv.Search("deployment-parameter", "parent='"+dep+"'"); len(got) != 0 {
		t.Fatalf("parameters survived a restart: %v", got)
	}
}

func TestDeploymentParameters(t *testing.T) {
	srv := newServer(t, Options{NoDeploymentStateJobs: true})
	box, c := commissionedBox(t, srv)
	dep := srv.CreateDeployment(box, testModule)
	if _, err := srv.StartDeployment(dep); err != nil {
		t.Fatal(err)
	}
	d, _ := srv.Resource(dep)
	creds := mapOf(d["api-credentials"])
	dc := newClient(t, srv)
	dc.expect(201, login(t, dc, str(creds["api-key"]), str(creds["api-secret"])))

	body := map[string]any{"parent": dep, "name": "web.tcp.80", "node-id": "web", "value": "32768",
		"acl": map[string]any{"owners": []string{Admin}, "edit-acl": []string{Owner}}}
	r := dc.expect(201, dc.do("POST", "/api/deployment-parameter", body))
	want := nuvla.ParameterID(dep, "web", "web.tcp.80")
	if r.body["resource-id"] != want || r.header.Get("Location") != want {
		t.Fatalf("parameter id = %v, want %s", r.body["resource-id"], want)
	}
	r = dc.expect(409, dc.do("POST", "/api/deployment-parameter", body))
	if r.msg() != "conflict with "+want {
		t.Fatalf("duplicate: %s", r.raw)
	}
	dc.expect(400, dc.do("POST", "/api/deployment-parameter", map[string]any{"parent": dep, "name": "x", "bogus": 1}))
	dc.expect(400, dc.do("POST", "/api/deployment-parameter", map[string]any{"parent": dep, "name": "x", "value": 3}))
	dc.expect(404, dc.do("POST", "/api/deployment-parameter", map[string]any{"parent": "deployment/nope", "name": "x"}))

	// The deployment key (edit-acl via parent) edits the value only.
	r = dc.expect(200, dc.do("PUT", "/api/"+want, map[string]any{"value": "8080", "name": "renamed", "node-id": "x"}))
	if r.body["value"] != "8080" || r.body["name"] != "web.tcp.80" || r.body["node-id"] != "web" {
		t.Fatalf("edit = %s", r.raw)
	}
	// The box did not create it and is not in its ACL.
	c.expect(403, c.do("PUT", "/api/"+want, map[string]any{"value": "1"}))

	// The box creates its own parameters (no node-id).
	r = c.expect(201, c.do("POST", "/api/deployment-parameter", map[string]any{"parent": dep, "name": "hostname", "value": "10.0.0.5"}))
	if r.body["resource-id"] != nuvla.ParameterID(dep, "", "hostname") {
		t.Fatalf("hostname id = %v", r.body["resource-id"])
	}
	// Search by parent/name/node-id with a form PUT.
	form := "filter=" + url.QueryEscape("parent='"+dep+"' and name='web.tcp.80' and node-id='web'") + "&select=value"
	r = dc.expect(200, dc.do("PUT", "/api/deployment-parameter", []byte(form), "Content-Type", "application/x-www-form-urlencoded"))
	res := listOf(r.body["resources"])
	if r.body["count"] != 1.0 || len(res) != 1 || mapOf(res[0])["value"] != "8080" || r.body["resource-type"] != "deployment-parameter-collection" {
		t.Fatalf("search = %s", r.raw)
	}
	// Another box cannot create parameters on this deployment.
	other, oc := commissionedBox(t, srv)
	_ = other
	oc.expect(403, oc.do("POST", "/api/deployment-parameter", map[string]any{"parent": dep, "name": "evil"}))
}

func TestDeploymentStateJobsFromTelemetry(t *testing.T) {
	srv := newServer(t, Options{})
	box, c := commissionedBox(t, srv)
	sid := statusID(t, srv, box)
	dep := srv.CreateDeployment(box, testModule)
	start, _ := srv.StartDeployment(dep)
	c.expect(200, c.do("PUT", "/api/"+dep, map[string]any{"state": "STARTED"}))
	c.expect(200, c.do("PUT", "/api/"+start, map[string]any{"state": "SUCCESS", "return-code": 0}))
	r := c.expect(200, c.do("PUT", "/api/"+sid, minimalStatus()))
	jobs := ids(r.body["jobs"])
	if len(jobs) != 1 {
		t.Fatalf("jobs after telemetry = %v", jobs)
	}
	j, _ := srv.Resource(jobs[0])
	if j["action"] != "deployment_state" || mapOf(j["target-resource"])["href"] != dep {
		t.Fatalf("job = %v", j)
	}
	// No pile-up while one is pending; none with docker coe-resources.
	c.expect(200, c.do("PUT", "/api/"+sid, minimalStatus()))
	if got := srv.JobsFor(box); len(got) != 1 {
		t.Fatalf("deployment_state jobs piled up: %v", got)
	}
	c.expect(200, c.do("PUT", "/api/"+jobs[0], map[string]any{"state": "SUCCESS", "return-code": 0}))
	withCoe := minimalStatus()
	withCoe["coe-resources"] = map[string]any{"docker": map[string]any{"containers": []any{}}}
	c.expect(200, c.do("PUT", "/api/"+sid, withCoe))
	if got := srv.JobsFor(box); len(got) != 0 {
		t.Fatalf("jobs with coe-resources = %v", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if done, err := srv.WaitJob(ctx, jobs[0]); err != nil || done["state"] != "SUCCESS" {
		t.Fatalf("WaitJob: %v %v", done, err)
	}
}

func TestRegistryContext(t *testing.T) {
	srv := newServer(t, Options{NoDeploymentStateJobs: true})
	box, c := commissionedBox(t, srv)
	cred := srv.CreateRegistryCredential("https://registry.example.com", "u", "p")
	dep := srv.CreateDeployment(box, testModule)
	if !srv.SetResourceField(dep, "registries-credentials", []string{cred}) {
		t.Fatal("SetResourceField failed")
	}
	job, err := srv.StartDeployment(dep)
	if err != nil {
		t.Fatal(err)
	}
	r := c.expect(200, c.do("POST", "/api/"+job+"/get-context", nil))
	rc := mapOf(r.body[cred])
	if rc["username"] != "u" || rc["password"] != "p" {
		t.Fatalf("registry credential in context = %v", rc)
	}
	if svc := mapOf(r.body[str(rc["parent"])]); svc["endpoint"] != "https://registry.example.com" {
		t.Fatalf("registry service in context = %v", svc)
	}
	stop, _ := srv.StopDeployment(dep, nil)
	r = c.expect(200, c.do("POST", "/api/"+stop+"/get-context", nil))
	if r.body[cred] != nil {
		t.Fatal("stop context carries registry credentials")
	}
}

func TestOwnerHTTPDeployment(t *testing.T) {
	srv := newServer(t, Options{NoDeploymentStateJobs: true})
	box, _ := commissionedBox(t, srv)
	u := newClient(t, srv)
	u.header = map[string]string{"nuvla-authn-info": Owner + " " + Owner + " group/nuvla-user"}
	parent := str(srv.Search("credential", "subtype='infrastructure-service-swarm'")[0]["id"])
	r := u.expect(201, u.do("POST", "/api/deployment", map[string]any{"module": testModule, "parent": parent}))
	dep := str(r.body["resource-id"])
	d, _ := srv.Resource(dep)
	if d["nuvlabox"] != box || d["execution-mode"] != "pull" {
		t.Fatalf("deployment = %v", d)
	}
	r = u.expect(202, u.do("POST", "/api/"+dep+"/start", nil))
	if r.body["resource-id"] != dep || !strings.HasPrefix(str(r.body["location"]), "job/") {
		t.Fatalf("start = %s", r.raw)
	}
	r = u.expect(409, u.do("POST", "/api/"+dep+"/update", nil))
	if r.msg() != "operation 'update' not allowed on "+dep {
		t.Fatalf("update in PENDING: %s", r.raw)
	}
	u.expect(409, u.do("DELETE", "/api/"+dep, nil))
	u.expect(202, u.do("POST", "/api/"+dep+"/stop", map[string]any{}))
}
