package config

import (
	"strings"
	"testing"
)

func TestHostSection(t *testing.T) {
	c := Default()
	if c.Host.AllowReboot || c.Host.SSHUser != "root" {
		t.Fatalf("host defaults = %+v, want reboot off and ssh-user root", c.Host)
	}
	if err := Decode([]byte("[host]\nallow-reboot = true\nssh-user = \"pi\"\n"), &c); err != nil {
		t.Fatal(err)
	}
	if !c.Host.AllowReboot || c.Host.SSHUser != "pi" {
		t.Fatalf("decoded host = %+v", c.Host)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ in, want string }{
		{"[host]\nallow-reboot = \"yes\"", "allow-reboot"},
		{"[host]\nallow_reboot = true", `unknown key "host.allow_reboot" (line 2)`},
		{"[host]\nssh-user = 0", "ssh-user"},
	} {
		c := Default()
		if err := Decode([]byte(tt.in), &c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%q) = %v, want it to mention %q", tt.in, err, tt.want)
		}
	}
	for _, u := range []string{"", "../etc", "a b", "root:x", "-rf"} {
		c := Default()
		c.Host.SSHUser = u
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "host.ssh-user") {
			t.Errorf("ssh-user %q: %v", u, err)
		}
	}
}
