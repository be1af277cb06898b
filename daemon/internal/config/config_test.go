package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const boxID = "nuvlabox/6f1c0f3e-2b7a-4c61-9b7d-5c1c2f0e9a11"

func TestDecodeFull(t *testing.T) {
	c := Default()
	err := Decode([]byte(`
state-dir = "/srv/berth"
log-level = "debug"
[docker]
resync-interval = "30s"
[nuvla]
endpoint = "https://nuvla.example.org"
nuvlabox-id = "`+boxID+`"
[web]
listen = ""
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/srv/berth" || c.Docker.ResyncInterval.Duration != 30*time.Second || c.Nuvla.NuvlaboxID != boxID || c.Web.Listen != "" {
		t.Fatalf("decoded %+v", c)
	}
	if c.Socket != DefaultSocket {
		t.Fatalf("absent key lost its default: socket = %q", c.Socket)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	tests := []struct{ in, want string }{
		{"stat-dir = \"/x\"", `unknown key "stat-dir" (line 1)`},
		{"[nuvla]\nendpont = \"x\"", `unknown key "nuvla.endpont" (line 2)`},
		{"[docker]\nresync-interval = \"soon\"", `"soon" is not a duration`},
		{"[nuvla]\ninsecure = \"yes\"", "insecure"},
		{"state-dir = ", "line 1"},
	}
	for _, tt := range tests {
		c := Default()
		err := Decode([]byte(tt.in), &c)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%q) error = %v, want it to mention %q", tt.in, err, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" = valid
	}{
		{"defaults are valid (standalone)", func(*Config) {}, ""},
		{"relative state dir", func(c *Config) { c.StateDir = "state" }, "state-dir"},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, "log-level"},
		{"endpoint without box", func(c *Config) { c.Nuvla.Endpoint = "https://nuvla.io" }, "nuvla.nuvlabox-id: is required"},
		{"box without endpoint", func(c *Config) { c.Nuvla.NuvlaboxID = boxID }, "nuvla.endpoint: is required"},
		{"ftp endpoint", func(c *Config) { c.Nuvla.Endpoint = "ftp://x"; c.Nuvla.NuvlaboxID = boxID }, "http or https"},
		{"bad box id", func(c *Config) { c.Nuvla.Endpoint = "https://x"; c.Nuvla.NuvlaboxID = "nuvlabox/123" }, "not nuvlabox/<uuid>"},
		{"key without secret", func(c *Config) { c.Nuvla.APIKey = "credential/x" }, "together"},
		{"web on all interfaces", func(c *Config) { c.Web.Listen = "0.0.0.0:8484" }, "not a loopback address"},
		{"docker host scheme", func(c *Config) { c.Docker.Host = "/var/run/docker.sock" }, "docker.host"},
		{"tiny resync", func(c *Config) { c.Docker.ResyncInterval.Duration = time.Millisecond }, "docker.resync-interval"},
		{"good control plane", func(c *Config) { c.Nuvla.Endpoint = "http://127.0.0.1:9"; c.Nuvla.NuvlaboxID = boxID }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			c.Normalize()
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestEnvAndNormalize(t *testing.T) {
	env := map[string]string{
		"NUVLA_ENDPOINT":          "nuvla.example.org/api/",
		"NUVLA_ENDPOINT_INSECURE": "true",
		"NUVLABOX_UUID":           strings.TrimPrefix(boxID, "nuvlabox/"),
		"NUVLAEDGE_API_KEY":       "credential/k",
		"NUVLAEDGE_API_SECRET":    "s",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if c.Nuvla.Endpoint != "https://nuvla.example.org" || !c.Nuvla.Insecure || c.Nuvla.NuvlaboxID != boxID || c.Nuvla.APISecret != "s" {
		t.Fatalf("got %+v", c.Nuvla)
	}
	env["NUVLA_ENDPOINT_INSECURE"] = "maybe"
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "NUVLA_ENDPOINT_INSECURE") {
		t.Fatalf("bad bool accepted: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "none.toml"), true); err != nil {
		t.Fatalf("optional missing file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none.toml"), false); err == nil {
		t.Fatal("explicit missing file accepted")
	}
	p := filepath.Join(dir, "c.toml")
	os.WriteFile(p, []byte("bogus = 1\n"), 0o600)
	if _, err := Load(p, false); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("error does not name file and key: %v", err)
	}
}
