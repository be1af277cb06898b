package registrytest

import (
	"net"
	"net/http"
	"testing"
)

// The registry answers on loopback only and wants its credentials; no
// Docker engine is needed to check that.
func TestStartAuthenticates(t *testing.T) {
	r := Start(t, "alice", "s3cret")
	host, _, err := net.SplitHostPort(r.Host())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Host() = %q, want 127.0.0.1:<port>", r.Host())
	}
	get := func(user, pass string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+r.Host()+"/v2/", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("", ""); c != http.StatusUnauthorized {
		t.Errorf("anonymous /v2/: %d, want 401", c)
	}
	if c := get("alice", "wrong"); c != http.StatusUnauthorized {
		t.Errorf("wrong password /v2/: %d, want 401", c)
	}
	if c := get("alice", "s3cret"); c != http.StatusOK {
		t.Errorf("right password /v2/: %d, want 200", c)
	}
	r.Close()
	r.Close() // idempotent
	if _, err := http.Get("http://" + r.Host() + "/v2/"); err == nil {
		t.Error("registry still answers after Close")
	}
}
