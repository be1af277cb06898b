package nuvlatest

import (
	"encoding/json"
	"testing"
)

func TestStatusSchema(t *testing.T) {
	srv := newServer(t, Options{})
	box, c := commissionedBox(t, srv)
	sid := statusID(t, srv, box)

	r := c.expect(400, c.do("PUT", "/api/"+sid, map[string]any{"status": "OPERATIONAL", "gpu-temperature": 3}))
	mustContain(t, r.msg(), "gpu-temperature")
	mustContain(t, r.msg(), "does not satisfy defined schema")

	bad := []map[string]any{
		{"hostname": nil},
		{"status": "GREAT"},
		{"resources": map[string]any{"cpu": map[string]any{"capacity": 4, "load": 0.1}, "ram": map[string]any{"capacity": 10, "used": 1}}},
		{"resources": map[string]any{"cpu": map[string]any{"capacity": 0, "load": 0.1}, "ram": map[string]any{"capacity": 10, "used": 1}, "disks": []any{}}},
		{"resources": map[string]any{"cpu": map[string]any{"capacity": 4.5, "load": 0.1}, "ram": map[string]any{"capacity": 10, "used": 1}, "disks": []any{}}},
		{"resources": map[string]any{"cpu": map[string]any{"capacity": 4, "load": 0.1}, "ram": map[string]any{"capacity": 10, "used": 1}, "disks": []any{}, "net-stats": []any{}}},
		{"resources": map[string]any{"cpu": map[string]any{"capacity": 4, "load": 0.1}, "ram": map[string]any{"capacity": 10, "used": 1}, "disks": []any{},
			"container-stats": []any{map[string]any{"id": "abc"}}}},
		{"ip": 10},
		// RAM in bytes instead of MiB, disks in GB instead of bytes, used above capacity.
		{"resources": map[string]any{"cpu": map[string]any{"capacity": 4, "load": 0.1}, "ram": map[string]any{"capacity": 8 << 30, "used": 1}, "disks": []any{}}},
		{"resources": map[string]any{"cpu": map[string]any{"capacity": 4, "load": 0.1}, "ram": map[string]any{"capacity": 10, "used": 1},
			"disks": []any{map[string]any{"device": "sda1", "capacity": 62, "used": 20}}}},
		{"resources": map[string]any{"cpu": map[string]any{"capacity": 4, "load": 0.1}, "ram": map[string]any{"capacity": 10, "used": 1},
			"disks": []any{map[string]any{"device": "sda1", "capacity": 1 << 30, "used": 2 << 30}}}},
		{"resources": map[string]any{"cpu": map[string]any{"capacity": 4, "load": 0.1}, "ram": map[string]any{"capacity": 10, "used": 1}, "disks": []any{},
			"container-stats": []any{map[string]any{"id": "abc", "name": "x", "created-at": "yesterday"}}}},
		// coe-resources must be raw Docker objects.
		{"coe-resources": map[string]any{"docker": map[string]any{"containers": []any{map[string]any{"id": "abc", "image": "x"}}}}},
		{"coe-resources": map[string]any{"docker": map[string]any{"volumes": []any{map[string]any{"Id": "abc"}}}}},
		{"components": []any{}},
		{"current-time": "yesterday"},
	}
	for _, b := range bad {
		r := c.do("PUT", "/api/"+sid, b)
		if r.status != 400 {
			t.Errorf("PUT %v: status %d, want 400 (%s)", b, r.status, r.raw)
		}
	}

	r = c.expect(200, c.do("PUT", "/api/"+sid, []byte(minimalStatusJSON)))
	if len(r.body) != 1 || r.body["jobs"] == nil {
		t.Fatalf("reply to the box = %s", r.raw)
	}
	doc, _ := srv.Resource(sid)
	if doc["hostname"] != "edge-01" || doc["last-telemetry"] == nil || doc["next-telemetry"] == nil {
		t.Fatalf("stored status = %v", doc)
	}
	nb, _ := srv.Resource(box)
	if nb["nuvlabox-engine-version"] != "2.19.3" {
		t.Fatalf("engine version not denormalised: %v", nb["nuvlabox-engine-version"])
	}
	// Server-only keys are ignored for the box, not rejected.
	c.expect(200, c.do("PUT", "/api/"+sid, map[string]any{"online": true, "next-heartbeat": "2000-01-01T00:00:00Z"}))
	doc, _ = srv.Resource(sid)
	if doc["online"] != nil || doc["next-heartbeat"] != nil {
		t.Fatalf("server-only keys were set by the box: %v %v", doc["online"], doc["next-heartbeat"])
	}
	if h := srv.StatusHistory(box); len(h) != 2 || h[0]["hostname"] != "edge-01" {
		t.Fatalf("history = %d entries", len(h))
	}

	// Other callers get the document.
	owner := newClient(t, srv)
	owner.header = map[string]string{"nuvla-authn-info": Admin}
	r = owner.expect(200, owner.do("PUT", "/api/"+sid, map[string]any{"comment": "hi"}))
	if r.body["id"] != sid || r.body["comment"] != "hi" {
		t.Fatalf("admin reply = %s", r.raw)
	}

	// A suspended box cannot report.
	srv.SetNuvlaboxField(box, "state", "SUSPENDED")
	c.expect(409, c.do("PUT", "/api/"+sid, map[string]any{"comment": "x"}))
}

func TestStatusPatchGzipSelect(t *testing.T) {
	srv := newServer(t, Options{NoDeploymentStateJobs: true})
	box, c := commissionedBox(t, srv)
	sid := statusID(t, srv, box)
	base := minimalStatus()
	base["temperatures"] = []any{map[string]any{"thermal-zone": "cpu", "value": 40.5}}
	c.expect(200, c.do("PUT", "/api/"+sid, base))

	patch := `[{"op":"replace","path":"/resources/cpu/load","value":0.42},
	           {"op":"add","path":"/status-notes","value":["disk almost full"]},
	           {"op":"remove","path":"/resources/net-stats"}]`
	r := c.expect(200, c.do("PUT", "/api/"+sid, []byte(patch), "Content-Type", "application/json-patch+json"))
	if _, ok := r.body["jobs"]; !ok {
		t.Fatalf("patch reply = %s", r.raw)
	}
	doc, _ := srv.Resource(sid)
	res := mapOf(doc["resources"])
	if mapOf(res["cpu"])["load"] != 0.42 || res["net-stats"] != nil || len(listOf(doc["status-notes"])) != 1 {
		t.Fatalf("patched doc = %v", doc)
	}

	// A patch that does not apply to the stored document is a 400.
	r = c.expect(400, c.do("PUT", "/api/"+sid, []byte(`[{"op":"replace","path":"/gpio-pins/0/pin","value":3}]`),
		"Content-Type", "application/json-patch+json"))
	mustContain(t, r.msg(), "Json patch exception")
	c.expect(400, c.do("PUT", "/api/"+sid, []byte(`{"not":"a patch"}`), "Content-Type", "application/json-patch+json"))
	// A patch producing an invalid document is a 400 as well.
	r = c.expect(400, c.do("PUT", "/api/"+sid, []byte(`[{"op":"add","path":"/bogus","value":1}]`),
		"Content-Type", "application/json-patch+json"))
	mustContain(t, r.msg(), "bogus")

	// gzip bodies, with and without patch.
	body, _ := json.Marshal(map[string]any{"hostname": "gz-host"})
	c.expect(200, c.do("PUT", "/api/"+sid, gzipped(t, body), "Content-Encoding", "gzip"))
	doc, _ = srv.Resource(sid)
	if doc["hostname"] != "gz-host" {
		t.Fatalf("gzip edit not applied: %v", doc["hostname"])
	}
	c.expect(200, c.do("PUT", "/api/"+sid, gzipped(t, []byte(`[{"op":"replace","path":"/hostname","value":"gz2"}]`)),
		"Content-Encoding", "gzip", "Content-Type", "application/json-patch+json"))
	doc, _ = srv.Resource(sid)
	if doc["hostname"] != "gz2" {
		t.Fatalf("gzip patch not applied: %v", doc["hostname"])
	}
	var logged bool
	for _, req := range srv.Requests() {
		if req.ContentEncoding == "gzip" && req.Body == string(body) {
			logged = true
		}
	}
	if !logged {
		t.Fatal("request log does not hold the gunzipped body")
	}
	c.expect(400, c.do("PUT", "/api/"+sid, []byte("not gzip"), "Content-Encoding", "gzip"))

	// ?select deletes keys before merging; mandatory keys survive.
	c.expect(200, c.do("PUT", "/api/"+sid+"?select=temperatures&select=id,status-notes", map[string]any{}))
	doc, _ = srv.Resource(sid)
	if _, ok := doc["temperatures"]; ok {
		t.Fatal("temperatures not deleted by select")
	}
	if _, ok := doc["status-notes"]; ok {
		t.Fatal("status-notes not deleted by comma-separated select")
	}
	if doc["id"] != sid || doc["hostname"] != "gz2" {
		t.Fatalf("select removed too much: %v", doc)
	}
	// Deleting a required key leaves an invalid document: 400.
	c.expect(400, c.do("PUT", "/api/"+sid+"?select=status", map[string]any{}))
}
