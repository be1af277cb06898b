package nuvlatest

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var secretRE = regexp.MustCompile(`^[2-9a-km-zA-HJ-NP-Z]{6}(\.[2-9a-km-zA-HJ-NP-Z]{6}){4}$`)

func TestRefusesWildcardAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		if srv, err := New(Options{Addr: addr}); err == nil {
			srv.Close()
			t.Errorf("New(%q) succeeded, want error", addr)
		}
	}
}

func TestCloudEntryPointAnonymous(t *testing.T) {
	srv := newServer(t, Options{})
	c := newClient(t, srv)
	r := c.expect(200, c.do("GET", "/api/cloud-entry-point", nil))
	if got := str(r.body["base-uri"]); got != srv.URL()+"/api/" {
		t.Fatalf("base-uri = %q", got)
	}
	r = c.expect(200, c.do("GET", "/api/resource-metadata/nuvlabox-status-2", nil))
	mustContain(t, r.raw, `"name":"cpu-usage"`)
	mustContain(t, r.raw, `"name":"coe-resources"`)
}

func TestActivateTwice(t *testing.T) {
	srv := newServer(t, Options{RefreshInterval: 1, HeartbeatInterval: 1})
	box := srv.CreateNuvlabox("edge")
	nb, _ := srv.Resource(box)
	if nb["state"] != "NEW" || nb["version"] != 2.0 || nb["refresh-interval"] != 1.0 || nb["heartbeat-interval"] != 1.0 {
		t.Fatalf("fixture = %v", nb)
	}
	c := newClient(t, srv)
	key, secret := activate(t, c, box)
	if !strings.HasPrefix(key, "credential/") || !secretRE.MatchString(secret) {
		t.Fatalf("activation gave key %q secret %q", key, secret)
	}
	if got := srv.NuvlaboxState(box); got != "ACTIVATED" {
		t.Fatalf("state = %s", got)
	}
	r := c.expect(409, c.do("POST", "/api/"+box+"/activate", nil))
	if want := "operation 'activate' not allowed on " + box; r.msg() != want || r.body["status"] != 409.0 {
		t.Fatalf("second activate: %s", r.raw)
	}
	nb, _ = srv.Resource(box)
	status, ok := srv.Resource(str(nb["nuvlabox-status"]))
	if !ok || status["status"] != "UNKNOWN" || status["parent"] != box || status["version"] != 2.0 {
		t.Fatalf("status doc = %v", status)
	}
	if nb["credential-api-key"] != key || !strings.HasPrefix(str(nb["infrastructure-service-group"]), "infrastructure-service-group/") {
		t.Fatalf("nuvlabox links = %v", nb)
	}
	cred, _ := srv.Resource(key)
	if cred["subtype"] != "api-key" || cred["parent"] != box || mapOf(cred["claims"])["identity"] != box {
		t.Fatalf("credential = %v", cred)
	}
	if strings.Contains(str(cred["digest"]), secret) {
		t.Fatal("the secret is stored in clear")
	}
	c.expect(404, c.do("POST", "/api/nuvlabox/does-not-exist/activate", nil))
}

func TestSessionLogin(t *testing.T) {
	srv := newServer(t, Options{})
	box := srv.CreateNuvlabox("edge")
	anon := newClient(t, srv)
	key, secret := activate(t, anon, box)

	r := anon.expect(403, anon.do("GET", "/api/"+box, nil))
	if r.msg() != "credentials required" {
		t.Fatalf("anonymous GET: %s", r.raw)
	}
	r = anon.expect(403, login(t, anon, key, "wrong.secret"))
	if want := "invalid credentials for '" + key + "'"; r.msg() != want {
		t.Fatalf("bad secret: %s", r.raw)
	}
	anon.expect(403, login(t, anon, "credential/unknown", secret))

	c := newClient(t, srv)
	r = c.expect(201, login(t, c, key, secret))
	sid := str(r.body["resource-id"])
	if !strings.HasPrefix(sid, "session/") || r.msg() != sid+" created" || r.header.Get("Location") != sid {
		t.Fatalf("login reply: %v %s", r.header, r.raw)
	}
	ck := r.header.Get("Set-Cookie")
	mustContain(t, ck, "HttpOnly")
	mustContain(t, ck, "Path=/")
	if strings.Contains(strings.ToLower(ck), "secure") {
		t.Fatalf("cookie is Secure over http: %s", ck)
	}
	r = c.expect(200, c.do("GET", "/api/"+box, nil))
	if r.body["id"] != box || r.body["state"] != "ACTIVATED" {
		t.Fatalf("GET box: %s", r.raw)
	}
	var rels []string
	for _, op := range listOf(r.body["operations"]) {
		rels = append(rels, str(mapOf(op)["rel"]))
	}
	if !has(rels, "commission") || has(rels, "edit") || has(rels, "heartbeat") {
		t.Fatalf("operations of an ACTIVATED box for the box = %v", rels)
	}
	// The box can view and manage itself but not edit it.
	r = c.expect(403, c.do("PUT", "/api/"+box, map[string]any{"name": "x"}))
	if r.msg() != "invalid credentials for '"+box+"'" {
		t.Fatalf("box PUT itself: %s", r.raw)
	}
	// GET ?select restricts keys, id always returned.
	r = c.expect(200, c.do("GET", "/api/"+box+"?select=state", nil))
	if len(r.body) != 2 || r.body["state"] != "ACTIVATED" || r.body["id"] != box {
		t.Fatalf("select: %s", r.raw)
	}
	// Current session.
	r = c.expect(200, c.do("PUT", "/api/session", []byte(""), "Content-Type", "application/x-www-form-urlencoded"))
	res := listOf(r.body["resources"])
	if r.body["count"] != 1.0 || len(res) != 1 || mapOf(res[0])["identifier"] != box || mapOf(res[0])["method"] != "api-key" {
		t.Fatalf("session search: %s", r.raw)
	}
	// A bare uuid is accepted as key.
	c2 := newClient(t, srv)
	c2.expect(201, login(t, c2, strings.TrimPrefix(key, "credential/"), secret))

	// Expired sessions force a re-login.
	srv.ExpireSessions()
	c.expect(403, c.do("GET", "/api/"+box, nil))
	c.expect(201, login(t, c, key, secret))
	c.expect(200, c.do("GET", "/api/"+box, nil))

	// Logout.
	r = c.expect(200, c.do("GET", "/api/session", nil))
	sid = str(mapOf(listOf(r.body["resources"])[0])["id"])
	r = c.expect(200, c.do("DELETE", "/api/"+sid, nil))
	if r.msg() != sid+" deleted" {
		t.Fatalf("logout: %s", r.raw)
	}
	c.expect(403, c.do("GET", "/api/"+box, nil))

	// Requests are logged with the identity.
	var sawBox, sawAnon bool
	for _, req := range srv.Requests() {
		if req.Path == "/api/"+box && req.Method == "GET" && req.Status == 200 && req.Identity == box {
			sawBox = true
		}
		if req.Path == "/api/"+box && req.Status == 403 && req.Identity == "" {
			sawAnon = true
		}
	}
	if !sawBox || !sawAnon {
		t.Fatalf("request log misses identities: box=%v anon=%v", sawBox, sawAnon)
	}
}

func TestCommissionAndHeartbeat(t *testing.T) {
	srv := newServer(t, Options{HeartbeatInterval: 1, RefreshInterval: 1})
	box := srv.CreateNuvlabox("edge")
	c := newClient(t, srv)
	key, secret := activate(t, c, box)
	c.expect(201, login(t, c, key, secret))

	r := c.expect(409, c.do("POST", "/api/"+box+"/heartbeat", nil))
	if r.msg() != "operation 'heartbeat' not allowed on "+box {
		t.Fatalf("heartbeat before commission: %s", r.raw)
	}
	r = c.expect(400, c.do("POST", "/api/"+box+"/commission", map[string]any{"swarm-endpoint": "local", "bogus": 1}))
	mustContain(t, r.msg(), "bogus")

	body := map[string]any{
		"capabilities":   []string{"NUVLA_HEARTBEAT", "NUVLA_JOB_PULL", "NUVLA_HEARTBEAT"},
		"swarm-endpoint": "local", "swarm-client-ca": "null", "swarm-client-cert": "null", "swarm-client-key": "null",
		"swarm-token-manager": "SWMTKN-1-m", "swarm-token-worker": "SWMTKN-1-w",
	}
	r = c.expect(200, c.do("POST", "/api/"+box+"/commission", body))
	if r.msg() != "commission executed successfully" || r.body["status"] != 200.0 {
		t.Fatalf("commission: %s", r.raw)
	}
	nb, _ := srv.Resource(box)
	if nb["state"] != "COMMISSIONED" || strings.Join(strList(nb["capabilities"]), ",") != "NUVLA_HEARTBEAT,NUVLA_JOB_PULL" {
		t.Fatalf("box after commission: %v", nb)
	}
	group := str(nb["infrastructure-service-group"])
	svcs := srv.Search("infrastructure-service", "parent='"+group+"' and subtype='swarm'")
	if len(svcs) != 1 || svcs[0]["endpoint"] != "local" {
		t.Fatalf("swarm services = %v", svcs)
	}
	svc := str(svcs[0]["id"])
	creds := srv.Search("credential", "parent='"+svc+"' and subtype='infrastructure-service-swarm'")
	if len(creds) != 1 || creds[0]["ca"] != "null" {
		t.Fatalf("swarm credentials = %v", creds)
	}
	if toks := srv.Search("credential", "parent='"+svc+"' and subtype='swarm-token'"); len(toks) != 2 {
		t.Fatalf("swarm tokens = %v", toks)
	}
	coe := listOf(nb["coe-list"])
	if len(coe) != 1 || mapOf(coe[0])["id"] != svc || mapOf(coe[0])["coe-type"] != "docker" {
		t.Fatalf("coe-list = %v", nb["coe-list"])
	}
	// Re-commission updates, never duplicates, and honours removed.
	c.expect(200, c.do("POST", "/api/"+box+"/commission", map[string]any{
		"swarm-endpoint": "tcp://10.0.0.5:2376", "removed": []string{"swarm-token-worker"}}))
	svcs = srv.Search("infrastructure-service", "parent='"+group+"'")
	if len(svcs) != 1 || svcs[0]["endpoint"] != "tcp://10.0.0.5:2376" {
		t.Fatalf("services after re-commission = %v", svcs)
	}
	if toks := srv.Search("credential", "parent='"+svc+"' and subtype='swarm-token'"); len(toks) != 1 || toks[0]["scope"] != "MANAGER" {
		t.Fatalf("tokens after removed = %v", toks)
	}

	r = c.expect(200, c.do("POST", "/api/"+box+"/heartbeat", nil))
	nb, _ = srv.Resource(box)
	if r.body["doc-last-updated"] != nb["updated"] || len(listOf(r.body["jobs"])) != 0 {
		t.Fatalf("heartbeat: %s (updated %v)", r.raw, nb["updated"])
	}
	if nb["online"] != true {
		t.Fatal("box not online after heartbeat")
	}
	status, _ := srv.Resource(str(nb["nuvlabox-status"]))
	next, ok := parseTime(str(status["next-heartbeat"]))
	if status["online"] != true || !ok || next.Before(time.Now().Add(10*time.Second)) {
		t.Fatalf("status after heartbeat: %v", status)
	}
	before := str(r.body["doc-last-updated"])
	time.Sleep(5 * time.Millisecond)
	srv.SetNuvlaboxField(box, "heartbeat-interval", 15)
	r = c.expect(200, c.do("POST", "/api/"+box+"/heartbeat", nil))
	if str(r.body["doc-last-updated"]) == before {
		t.Fatalf("doc-last-updated did not change: %s", r.raw)
	}
	r = c.expect(200, c.do("GET", "/api/"+box+"?select=heartbeat-interval", nil))
	if r.body["heartbeat-interval"] != 15.0 {
		t.Fatalf("heartbeat-interval = %v", r.body["heartbeat-interval"])
	}
}

func TestOfflineDetection(t *testing.T) {
	srv := newServer(t, Options{OfflineCheckInterval: 10 * time.Millisecond})
	box, c := commissionedBox(t, srv)
	c.expect(200, c.do("POST", "/api/"+box+"/heartbeat", nil))
	sid := statusID(t, srv, box)
	past := time.Now().Add(-time.Second).UTC().Format(timeLayout)
	srv.SetResourceField(sid, "next-heartbeat", past)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if len(srv.Search("nuvlabox", "online=false and id='"+box+"'")) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("box never went offline")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := srv.Search("nuvlabox-status", "online=false and online-prev=true"); len(got) != 1 {
		t.Fatalf("status not offline: %v", got)
	}
}

func TestDecommission(t *testing.T) {
	srv := newServer(t, Options{})
	box := srv.CreateNuvlabox("edge")
	c := newClient(t, srv)
	key, secret := activate(t, c, box)
	c.expect(201, login(t, c, key, secret))
	srv.Decommission(box)
	if got := srv.NuvlaboxState(box); got != "DECOMMISSIONED" {
		t.Fatalf("state = %s", got)
	}
	r := newClient(t, srv).do("POST", "/api/session", map[string]any{"template": map[string]any{
		"href": "session-template/api-key", "key": key, "secret": secret}})
	if r.status != http.StatusForbidden || r.msg() != "invalid credentials for '"+key+"'" {
		t.Fatalf("login after decommission: %d %s", r.status, r.raw)
	}
	if _, ok := srv.Resource(key); ok {
		t.Fatal("api key still exists")
	}
	r = c.expect(409, c.do("POST", "/api/"+box+"/commission", map[string]any{}))
	mustContain(t, r.msg(), "operation 'commission' not allowed")
}

func TestNuvlaboxActionJobs(t *testing.T) {
	srv := newServer(t, Options{})
	box, c := commissionedBox(t, srv)
	owner := newClient(t, srv)
	owner.header = map[string]string{"nuvla-authn-info": Owner + " " + Owner + " group/nuvla-user"}
	r := owner.expect(202, owner.do("POST", "/api/"+box+"/reboot", nil))
	job := str(r.body["location"])
	if r.body["resource-id"] != box || r.body["status"] != 202.0 || !strings.HasPrefix(job, "job/") {
		t.Fatalf("reboot: %s", r.raw)
	}
	r = c.expect(200, c.do("GET", "/api/"+job, nil))
	if r.body["action"] != "reboot_nuvlabox" || r.body["execution-mode"] != "pull" || mapOf(r.body["target-resource"])["href"] != box {
		t.Fatalf("reboot job: %s", r.raw)
	}
	r = c.expect(200, c.do("POST", "/api/"+box+"/heartbeat", nil))
	if got := ids(r.body["jobs"]); len(got) != 1 || got[0] != job {
		t.Fatalf("heartbeat jobs = %v", got)
	}
	// Owner can edit the box, with validated intervals.
	owner.expect(400, owner.do("PUT", "/api/"+box, map[string]any{"refresh-interval": 5}))
	owner.expect(200, owner.do("PUT", "/api/"+box, map[string]any{"refresh-interval": 90, "state": "NEW"}))
	nb, _ := srv.Resource(box)
	if nb["refresh-interval"] != 90.0 || nb["state"] != "COMMISSIONED" {
		t.Fatalf("owner edit: %v", nb)
	}
	// create-log then fetch gives a job targeting the resource-log.
	r = owner.expect(201, owner.do("POST", "/api/"+box+"/create-log", map[string]any{"components": []string{"agent"}}))
	logID := str(r.body["resource-id"])
	r = owner.expect(202, owner.do("POST", "/api/"+logID+"/fetch", nil))
	if got := srv.JobsFor(box); len(got) != 2 || got[1] != str(r.body["location"]) {
		t.Fatalf("jobs with log = %v", got)
	}
	c.expect(404, c.do("POST", "/api/"+box+"/frobnicate", nil))
	c.expect(405, c.do("GET", "/api/"+box+"/heartbeat", nil))
}
