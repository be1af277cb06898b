package jobs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

var (
	testKeyA = testSSHKey("ssh-ed25519", "a") + " alice@laptop"
	testKeyB = testSSHKey("ssh-rsa", "b") + " bob"
)

// testSSHKey builds a well-formed public key of the type with a fake body.
func testSSHKey(typ, seed string) string {
	var blob []byte
	for _, part := range []string{typ, strings.Repeat(seed, 32)} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	return typ + " " + base64.StdEncoding.EncodeToString(blob)
}

func TestParseSSHKey(t *testing.T) {
	for _, tt := range []struct {
		in  string
		ok  bool
		typ string
	}{
		{testKeyA, true, "ssh-ed25519"},
		{`command="/bin/true",no-pty ` + testKeyB, true, "ssh-rsa"},
		{"# comment", false, ""},
		{"", false, ""},
		{"ssh-ed25519 not-base64!", false, ""},
		{"rsa-key AAAA", false, ""},
		{"ssh-rsa " + strings.Fields(testKeyA)[1], false, ""}, // blob of another type
	} {
		k, ok := parseSSHKey(tt.in)
		if ok != tt.ok || k.typ != tt.typ {
			t.Errorf("parseSSHKey(%q) = %v %v", tt.in, k, ok)
		}
	}
	a1, _ := parseSSHKey(testKeyA)
	a2, _ := parseSSHKey(strings.Replace(testKeyA, "alice@laptop", "other comment", 1))
	if a1 != a2 {
		t.Fatal("the comment changed the key's identity")
	}
}

// testUser is the current user with a temporary home.
func testUser(t *testing.T) (string, func(string) (*user.User, error)) {
	home := t.TempDir()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return home, func(name string) (*user.User, error) {
		if name != "edge" {
			return nil, user.UnknownUserError(name)
		}
		u := *me
		u.Username, u.HomeDir = "edge", home
		return &u, nil
	}
}

func TestSSHKeyJobs(t *testing.T) {
	home, lookup := testUser(t)
	h := newHostRig(t, HostOptions{SSHUser: "edge", LookupUser: lookup}, nil)
	file := filepath.Join(home, ".ssh", "authorized_keys")
	credA := h.srv.CreateResource("credential", map[string]any{"subtype": "ssh-key", "method": "ssh-key", "public-key": testKeyA})
	credB := h.srv.CreateResource("credential", map[string]any{"subtype": "ssh-key", "method": "ssh-key", "public-key": testKeyB})

	result := func(msg string) sshKeyResult {
		t.Helper()
		var r sshKeyResult
		if err := json.Unmarshal([]byte(msg), &r); err != nil {
			t.Fatalf("status message %q is not the JSON result: %v", msg, err)
		}
		return r
	}
	sshKeys := func() []string {
		nb, _ := h.srv.Resource(h.box)
		var out []string
		for _, k := range nb["ssh-keys"].([]any) {
			out = append(out, k.(string))
		}
		return out
	}

	// A key already there under another comment, and an unrelated line.
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	other := "# managed by hand\n" + strings.Replace(testKeyB, " bob", " bob@elsewhere", 1) + "\n"
	if err := os.WriteFile(file, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}

	r := result(expectJob(t, h.run(h.action("add-ssh-key", map[string]any{"credential": credA})), "SUCCESS", "key added"))
	if !r.Changed || r.File != file || r.User != "edge" || r.Credential != credA {
		t.Fatalf("result = %+v", r)
	}
	b, _ := os.ReadFile(file)
	if string(b) != other+testKeyA+"\n" {
		t.Fatalf("authorized_keys = %q", b)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("authorized_keys mode = %v", fi.Mode())
	}
	if got := sshKeys(); len(got) != 1 || got[0] != credA {
		t.Fatalf("nuvlabox ssh-keys = %v", got)
	}

	// Adding again changes nothing; B is there already under another comment.
	expectJob(t, h.run(h.action("add-ssh-key", map[string]any{"credential": credA})), "SUCCESS", "already authorized")
	expectJob(t, h.run(h.action("add-ssh-key", map[string]any{"credential": credB})), "SUCCESS", "already authorized")
	if b2, _ := os.ReadFile(file); string(b2) != string(b) {
		t.Fatalf("authorized_keys changed: %q", b2)
	}
	if got := sshKeys(); len(got) != 2 || got[1] != credB {
		t.Fatalf("nuvlabox ssh-keys = %v", got)
	}

	// Revoking B removes its line, whatever its comment, and keeps the rest.
	expectJob(t, h.run(h.action("revoke-ssh-key", map[string]any{"credential": credB})), "SUCCESS", "key revoked")
	if b, _ := os.ReadFile(file); string(b) != "# managed by hand\n"+testKeyA+"\n" {
		t.Fatalf("authorized_keys after revoke = %q", b)
	}
	expectJob(t, h.run(h.action("revoke-ssh-key", map[string]any{"credential": credB})), "SUCCESS", "key was not authorized")
	if got := sshKeys(); len(got) != 1 || got[0] != credA {
		t.Fatalf("nuvlabox ssh-keys = %v", got)
	}

	// Failures say why.
	bad := h.srv.CreateResource("credential", map[string]any{"subtype": "ssh-key", "public-key": "hello world"})
	expectJob(t, h.run(h.action("add-ssh-key", map[string]any{"credential": bad})), "FAILED", "is not one OpenSSH public key line")
	h.runner.opts.Host.SSHUser = "nobody-here"
	expectJob(t, h.run(h.action("add-ssh-key", map[string]any{"credential": credA})), "FAILED", `ssh user "nobody-here" (host.ssh-user in /etc/berth/config.toml)`)
}

func TestSSHKeyCreatesDotSSH(t *testing.T) {
	home, lookup := testUser(t)
	h := newHostRig(t, HostOptions{SSHUser: "edge", LookupUser: lookup}, nil)
	// add-ssh-key without a credential makes nuvlatest generate one, as Nuvla does.
	expectJob(t, h.run(h.action("add-ssh-key", map[string]any{})), "SUCCESS", "key added")
	fi, err := os.Stat(filepath.Join(home, ".ssh"))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf(".ssh = %v, %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".ssh", "authorized_keys")); !strings.HasPrefix(string(b), "ssh-ed25519 ") {
		t.Fatalf("authorized_keys = %q", b)
	}
}
