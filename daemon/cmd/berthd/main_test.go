package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseLayers(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.toml")
	os.WriteFile(cfgPath, []byte("state-dir = \"/from/file\"\nlog-level = \"warn\"\n[nuvla]\nendpoint = \"https://file.example\"\nnuvlabox-id = \"6f1c0f3e-2b7a-4c61-9b7d-5c1c2f0e9a11\"\n"), 0o600)
	env := map[string]string{"NUVLA_ENDPOINT": "https://env.example"}
	cfg, _, err := parse([]string{"--config", cfgPath, "--state-dir", "/from/flag"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != "/from/flag" || cfg.LogLevel != "warn" || cfg.Nuvla.Endpoint != "https://env.example" ||
		cfg.Nuvla.NuvlaboxID != "nuvlabox/6f1c0f3e-2b7a-4c61-9b7d-5c1c2f0e9a11" {
		t.Fatalf("layers applied wrongly: %+v", cfg)
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[nuvla]\nendpiont = \"x\"\n"), 0o600)
	noenv := func(string) string { return "" }
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--config", bad}, `unknown key "nuvla.endpiont"`},
		{[]string{"--config", filepath.Join(dir, "missing.toml")}, "missing.toml"},
		{[]string{"--config", filepath.Join(dir, "missing.toml"), "--nuvla-endpoint", "https://x"}, "missing.toml"},
		{[]string{"--nuvla-endpoint", "https://nuvla.io"}, "nuvla.nuvlabox-id: is required"},
		{[]string{"--web-listen", "0.0.0.0:80", "--config", bad}, "endpiont"},
		{[]string{"stray"}, `unexpected argument "stray"`},
	}
	for _, tt := range tests {
		_, _, err := parse(tt.args, noenv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parse(%q) error = %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}

// A damaged state file is moved aside with a clear log line; berthd starts.
func TestDamagedStateFile(t *testing.T) {
	dir := t.TempDir()
	garbage := make([]byte, 32<<10)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.db"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, nil)
	if _, err := d.Client().Status(t.Context()); err != nil {
		t.Fatalf("berthd does not answer after a damaged state file: %v", err)
	}
	moved, _ := filepath.Glob(filepath.Join(dir, "state.db.corrupt-*"))
	if len(moved) != 1 {
		t.Fatalf("damaged file not kept aside: %v", moved)
	}
	eventually(t, 5*time.Second, "a log line naming the moved file", func() (bool, string) {
		return strings.Contains(d.Log.String(), filepath.Base(moved[0])), ""
	})
}

func TestFirstRegularUser(t *testing.T) {
	for name, tc := range map[string]struct{ passwd, want string }{
		"desktop": {"root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\nbob:x:1001:1001::/home/bob:/bin/bash\nann:x:1000:1000::/home/ann:/bin/bash\n", "1000"},
		"server":  {"root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/usr/sbin/nologin\nnobody:x:65534:65534::/:/usr/sbin/nologin\n", ""},
		"broken":  {"garbage\nx:y\nann:x:abc:1::/:/bin/sh\n", ""},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "passwd")
			if err := os.WriteFile(p, []byte(tc.passwd), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := firstRegularUser(p); got != tc.want {
				t.Errorf("firstRegularUser = %q, want %q", got, tc.want)
			}
		})
	}
	if got := firstRegularUser("/nonexistent/passwd"); got != "" {
		t.Errorf("missing file: %q", got)
	}
}
