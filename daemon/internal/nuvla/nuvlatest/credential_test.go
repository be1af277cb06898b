package nuvlatest

import "testing"

func TestCredentialGenerateAndDelete(t *testing.T) {
	srv := newServer(t, Options{})
	u := newClient(t, srv)
	u.header = map[string]string{"nuvla-authn-info": Owner + " " + Owner + " group/nuvla-user"}
	u.expect(400, u.do("POST", "/api/credential", map[string]any{"subtype": "api-key"}))
	r := u.expect(201, u.do("POST", "/api/credential", map[string]any{
		"template": map[string]any{"href": "credential-template/generate-api-key", "name": "ci"}}))
	key, secret := str(r.body["resource-id"]), str(r.body["secret-key"])
	if !secretRE.MatchString(secret) {
		t.Fatalf("secret %q", secret)
	}
	// GET never shows the secret.
	r = u.expect(200, u.do("GET", "/api/"+key, nil))
	if r.body["subtype"] != "api-key" || r.body["secret-key"] != nil {
		t.Fatalf("credential = %s", r.raw)
	}
	c := newClient(t, srv)
	c.expect(201, login(t, c, key, secret))
	r = c.expect(200, c.do("GET", "/api/session", nil))
	if s := mapOf(listOf(r.body["resources"])[0]); s["identifier"] != Owner {
		t.Fatalf("session = %v", s)
	}
	r = u.expect(200, u.do("DELETE", "/api/"+key, nil))
	if r.msg() != key+" deleted" || r.body["resource-id"] != key {
		t.Fatalf("delete = %s", r.raw)
	}
	c2 := newClient(t, srv)
	c2.expect(403, login(t, c2, key, secret))
	u.expect(404, u.do("GET", "/api/"+key, nil))
	u.expect(404, u.do("GET", "/api/no-such-type", nil))
	u.expect(405, u.do("PATCH", "/api/credential", nil))
}
