package nuvlatest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

// client is a plain HTTP client with a cookie jar, like an agent's.
type client struct {
	t      *testing.T
	base   string
	hc     *http.Client
	header map[string]string
}

func newClient(t *testing.T, srv *Server) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: srv.URL(), hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r resp) msg() string { return str(r.body["message"]) }

// do sends a request; body may be nil, []byte (sent as is) or a value
// encoded as JSON.
func (c *client) do(method, path string, body any, headers ...string) resp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	out := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func (c *client) expect(want int, r resp) resp {
	c.t.Helper()
	if r.status != want {
		c.t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	return r
}

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// activate activates the box and returns the key and secret.
func activate(t *testing.T, c *client, box string) (string, string) {
	t.Helper()
	r := c.expect(200, c.do("POST", "/api/"+box+"/activate", nil))
	return str(r.body["api-key"]), str(r.body["secret-key"])
}

func login(t *testing.T, c *client, key, secret string) resp {
	t.Helper()
	return c.do("POST", "/api/session", map[string]any{"template": map[string]any{
		"href": "session-template/api-key", "key": key, "secret": secret}})
}

// commissionedBox returns a box that is activated, logged in and
// commissioned like a plain Docker host, with the client of its agent.
func commissionedBox(t *testing.T, srv *Server) (string, *client) {
	t.Helper()
	box := srv.CreateNuvlabox("edge")
	c := newClient(t, srv)
	key, secret := activate(t, c, box)
	c.expect(201, login(t, c, key, secret))
	c.expect(200, c.do("POST", "/api/"+box+"/commission", map[string]any{
		"capabilities":   []string{"NUVLA_HEARTBEAT", "NUVLA_JOB_PULL", "NUVLA_HEARTBEAT"},
		"swarm-endpoint": "local", "swarm-client-ca": "null", "swarm-client-cert": "null", "swarm-client-key": "null",
	}))
	return box, c
}

func statusID(t *testing.T, srv *Server, box string) string {
	t.Helper()
	nb, ok := srv.Resource(box)
	if !ok {
		t.Fatalf("%s not found", box)
	}
	return str(nb["nuvlabox-status"])
}

func minimalStatus() map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(minimalStatusJSON), &m); err != nil {
		panic(err)
	}
	return m
}

// minimalStatusJSON is the minimal valid telemetry document of the
// protocol reference (§4.4).
const minimalStatusJSON = `{"status": "OPERATIONAL",
 "current-time": "2025-08-21T09:13:01Z",
 "nuvlabox-engine-version": "2.19.3",
 "operating-system": "Ubuntu 22.04.4 LTS 6.5.0-41-generic",
 "architecture": "x86_64", "hostname": "edge-01", "ip": "10.0.0.5",
 "docker-server-version": "26.1.3",
 "last-boot": "2025-08-20T07:00:00Z",
 "resources": {"cpu": {"capacity": 4, "load": 0.31, "load-1": 0.5, "load-5": 0.4},
               "ram": {"capacity": 7847, "used": 2110},
               "disks": [{"device": "sda1", "capacity": 62725623808, "used": 21474836480}],
               "net-stats": [{"interface": "eth0", "bytes-received": 5247943, "bytes-transmitted": 41213}]},
 "network": {"default-gw": "eth0", "ips": {"local": "10.0.0.5", "public": "", "swarm": "", "vpn": ""},
             "interfaces": [{"interface": "eth0", "ips": [{"address": "10.0.0.5"}]}]},
 "installation-parameters": {"project-name": "nuvlaedge", "working-dir": "/opt/nuvlaedge",
                             "config-files": ["docker-compose.yml"], "environment": []}}`

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ids(v any) []string { return strList(v) }

func has(list []string, s string) bool { return containsStr(list, s) }

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}
