package nuvlatest

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestJobLifecycle(t *testing.T) {
	srv := newServer(t, Options{NoDeploymentStateJobs: true})
	box, c := commissionedBox(t, srv)
	sid := statusID(t, srv, box)
	job := srv.EnqueueJob(box, "reboot_nuvlabox", nil, 2)
	other := srv.EnqueueJob("nuvlabox/someone-else", "reboot_nuvlabox", nil, 2)

	r := c.expect(200, c.do("GET", "/api/"+job, nil))
	if r.body["state"] != "QUEUED" || r.body["progress"] != 0.0 || r.body["version"] != 2.0 ||
		r.body["execution-mode"] != "pull" || r.body["payload"] != nil {
		t.Fatalf("queued job = %s", r.raw)
	}
	c.expect(403, c.do("GET", "/api/"+other, nil))

	jobsOf := func(r resp) []string { return ids(r.body["jobs"]) }
	if got := jobsOf(c.expect(200, c.do("POST", "/api/"+box+"/heartbeat", nil))); len(got) != 1 || got[0] != job {
		t.Fatalf("heartbeat jobs (QUEUED) = %v", got)
	}
	r = c.expect(200, c.do("PUT", "/api/"+job, map[string]any{"state": "RUNNING", "action": "hijack"}))
	if r.body["state"] != "RUNNING" || r.body["started"] == nil || r.body["action"] != "reboot_nuvlabox" {
		t.Fatalf("running job = %s", r.raw)
	}
	// RUNNING jobs keep coming back, in heartbeats and status replies.
	if got := jobsOf(c.expect(200, c.do("POST", "/api/"+box+"/heartbeat", nil))); len(got) != 1 || got[0] != job {
		t.Fatalf("heartbeat jobs (RUNNING) = %v", got)
	}
	if got := jobsOf(c.expect(200, c.do("PUT", "/api/"+sid, minimalStatus()))); len(got) != 1 || got[0] != job {
		t.Fatalf("status jobs (RUNNING) = %v", got)
	}
	c.expect(400, c.do("PUT", "/api/"+job, map[string]any{"progress": 101}))
	c.expect(400, c.do("PUT", "/api/"+job, map[string]any{"state": "DONE"}))
	c.expect(200, c.do("PUT", "/api/"+job, map[string]any{"progress": 10, "status-message": "rebooting"}))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waited := make(chan map[string]any, 1)
	go func() {
		doc, err := srv.WaitJob(ctx, job)
		if err != nil {
			t.Error(err)
		}
		waited <- doc
	}()
	r = c.expect(200, c.do("PUT", "/api/"+job, map[string]any{"state": "SUCCESS", "return-code": 0}))
	if r.body["progress"] != 100.0 || r.body["duration"] == nil || r.body["return-code"] != 0.0 {
		t.Fatalf("final job = %s", r.raw)
	}
	if doc := <-waited; doc["state"] != "SUCCESS" || doc["status-message"] != "rebooting" {
		t.Fatalf("WaitJob = %v", doc)
	}
	if got := jobsOf(c.expect(200, c.do("POST", "/api/"+box+"/heartbeat", nil))); len(got) != 0 {
		t.Fatalf("heartbeat jobs after SUCCESS = %v", got)
	}
	r = c.expect(409, c.do("PUT", "/api/"+job, map[string]any{"state": "RUNNING"}))
	if r.msg() != "edit is not allowed in final state" {
		t.Fatalf("edit after final: %s", r.raw)
	}

	// Bad jobs are shaped as asked.
	bad := srv.EnqueueJob(box, "launch_rocket", map[string]any{"x": 1}, 1)
	r = c.expect(200, c.do("GET", "/api/"+bad, nil))
	if r.body["version"] != 1.0 || r.body["payload"] != `{"x":1}` {
		t.Fatalf("bad job = %s", r.raw)
	}
	// The box can search its jobs.
	r = c.expect(200, c.do("GET", "/api/job?filter=state='QUEUED'&orderby=created:desc&select=action", nil))
	if r.body["count"] != 1.0 || mapOf(listOf(r.body["resources"])[0])["action"] != "launch_rocket" {
		t.Fatalf("job search = %s", r.raw)
	}
	c.expect(400, c.do("GET", "/api/job?filter=state=", nil))

	// WaitJob honours its context.
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := srv.WaitJob(short, bad); err == nil {
		t.Fatal("WaitJob on a queued job returned without error")
	}
}

func TestFaults(t *testing.T) {
	srv := newServer(t, Options{})
	c := newClient(t, srv)
	srv.SetFault(Fault{Status: 500})
	r := c.expect(500, c.do("GET", "/api/cloud-entry-point", nil))
	if r.body["status"] != 500.0 {
		t.Fatalf("fault body = %s", r.raw)
	}
	// Hooks still work.
	box := srv.CreateNuvlabox("x")
	srv.SetFault(Fault{Status: 503, Path: "/activate", Times: 1})
	c.expect(200, c.do("GET", "/api/cloud-entry-point", nil))
	c.expect(503, c.do("POST", "/api/"+box+"/activate", nil))
	c.expect(200, c.do("POST", "/api/"+box+"/activate", nil))

	srv.SetFault(Fault{Blackhole: true})
	c.hc.Timeout = 100 * time.Millisecond
	start := time.Now()
	req, _ := newReq(srv.URL() + "/api/cloud-entry-point")
	if res, err := c.hc.Do(req); err == nil {
		res.Body.Close()
		t.Fatal("blackholed request answered")
	}
	if time.Since(start) < 90*time.Millisecond {
		t.Fatal("blackholed request returned early")
	}
	srv.SetFault(Fault{})
	c.hc.Timeout = 5 * time.Second
	c.expect(200, c.do("GET", "/api/cloud-entry-point", nil))
}

func TestCloseWithBlackholedRequest(t *testing.T) {
	srv, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetFault(Fault{Blackhole: true})
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := newReq(srv.URL() + "/api/cloud-entry-point")
		if res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req); err == nil {
			res.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond) // let the request reach the blackhole
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on a blackholed request")
	}
	<-done
	srv.Close() // idempotent
}

func newReq(url string) (*http.Request, error) {
	return http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
}
