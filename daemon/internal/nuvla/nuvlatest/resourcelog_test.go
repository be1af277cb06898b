package nuvlatest

import "testing"

func TestDeploymentCreateLog(t *testing.T) {
	srv := newServer(t, Options{NoDeploymentStateJobs: true})
	box, c := commissionedBox(t, srv)
	dep := srv.CreateDeployment(box, testModule)
	owner := newClient(t, srv)
	owner.header = map[string]string{"nuvla-authn-info": Owner + " " + Owner + " group/nuvla-user"}
	// Not offered before the deployment runs.
	owner.expect(409, owner.do("POST", "/api/"+dep+"/create-log", map[string]any{"components": []string{"web"}}))
	srv.SetResourceField(dep, "state", "STARTED")
	owner.expect(400, owner.do("POST", "/api/"+dep+"/create-log", map[string]any{}))
	c.expect(403, c.do("POST", "/api/"+dep+"/create-log", map[string]any{"components": []string{"web"}}))
	r := owner.expect(201, owner.do("POST", "/api/"+dep+"/create-log", map[string]any{"components": []string{"web"}, "lines": 5}))
	logID := str(r.body["resource-id"])
	r = owner.expect(202, owner.do("POST", "/api/"+logID+"/fetch", nil))
	job := str(r.body["location"])
	if got := srv.JobsFor(box); len(got) != 1 || got[0] != job {
		t.Fatalf("box jobs = %v, want [%s]", got, job)
	}
	j, _ := srv.Resource(job)
	if j["action"] != "fetch_deployment_log" {
		t.Fatalf("job = %v", j)
	}
	// The box reads the log, edits it, and gets the deployment in the context.
	r = c.expect(200, c.do("GET", "/api/"+logID, nil))
	if r.body["parent"] != dep || r.body["lines"] != 5.0 {
		t.Fatalf("resource-log = %s", r.raw)
	}
	c.expect(200, c.do("PUT", "/api/"+logID, map[string]any{"log": map[string]any{"web": []string{"2026-01-01T00:00:00Z hi"}}, "last-timestamp": "2026-01-01T00:00:00Z"}))
	r = c.expect(200, c.do("POST", "/api/"+job+"/get-context", nil))
	if r.body[dep] == nil || r.body[logID] == nil {
		t.Fatalf("context = %s", r.raw)
	}
}
