package jobs

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// sshKeyTypes are the key types authorized_keys accepts.
var sshKeyTypes = map[string]bool{
	"ssh-rsa": true, "ssh-dss": true, "ssh-ed25519": true,
	"ecdsa-sha2-nistp256": true, "ecdsa-sha2-nistp384": true, "ecdsa-sha2-nistp521": true,
	"sk-ssh-ed25519@openssh.com": true, "sk-ecdsa-sha2-nistp256@openssh.com": true,
}

// sshKey is a public key's identity: its type and base64 blob; comments and
// options do not count.
type sshKey struct{ typ, blob string }

// parseSSHKey finds the key in an authorized_keys line or a public-key
// string (options, then type, blob and comment).
func parseSSHKey(line string) (sshKey, bool) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return sshKey{}, false
	}
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if !sshKeyTypes[f[i]] {
			continue
		}
		// The blob starts with the key type as an SSH string.
		b, err := base64.StdEncoding.DecodeString(f[i+1])
		if err != nil || len(b) < 4+len(f[i]) || int(binary.BigEndian.Uint32(b)) != len(f[i]) || string(b[4:4+len(f[i])]) != f[i] {
			return sshKey{}, false
		}
		return sshKey{typ: f[i], blob: f[i+1]}, true
	}
	return sshKey{}, false
}

// sshKeyResult is the status message of the ssh-key jobs.
type sshKeyResult struct {
	Credential string `json:"credential"`
	User       string `json:"user"`
	File       string `json:"file"`
	Changed    bool   `json:"changed"`
	Message    string `json:"message"`
}

func (r *Runner) addSSHKey(ctx context.Context, jc *jobContext) (string, error) {
	return r.sshKeyJob(ctx, jc, true)
}

func (r *Runner) revokeSSHKey(ctx context.Context, jc *jobContext) (string, error) {
	return r.sshKeyJob(ctx, jc, false)
}

// sshKeyJob adds or removes the public key of the job's ssh-key credential
// in the configured user's authorized_keys, then commissions the box with
// the new list of ssh-key credentials, as NuvlaEdge does.
func (r *Runner) sshKeyJob(ctx context.Context, jc *jobContext, add bool) (string, error) {
	box, err := boxTarget(jc.job)
	if err != nil {
		return "", err
	}
	if err := decodePayload(jc.job.Payload, &struct{}{}); err != nil {
		return "", err
	}
	credID := affected(jc.job, "credential")
	if credID == "" {
		return "", fmt.Errorf("%s names no ssh-key credential in its affected-resources", jc.job.Action)
	}
	pub, err := r.publicKey(ctx, jc, credID)
	if err != nil {
		return "", err
	}
	key, ok := parseSSHKey(pub)
	if !ok || strings.ContainsAny(pub, "\r\n") {
		return "", fmt.Errorf("the public-key of %s is not one OpenSSH public key line (\"ssh-ed25519 AAAA… comment\")", credID)
	}
	h := r.opts.Host
	u, err := h.LookupUser(h.SSHUser)
	if err != nil {
		return "", fmt.Errorf("ssh user %q (host.ssh-user in %s): %w", h.SSHUser, ConfigFile, err)
	}
	if u.HomeDir == "" || !filepath.IsAbs(u.HomeDir) {
		return "", fmt.Errorf("ssh user %q has no home directory", h.SSHUser)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("ssh user %q has a non-numeric uid or gid", h.SSHUser)
	}
	file := filepath.Join(u.HomeDir, ".ssh", "authorized_keys")
	verb := "add"
	if !add {
		verb = "revoke"
	}
	if err := jc.step("authorized_keys", verb+" "+credID); err != nil {
		return "", err
	}
	changed, err := editAuthorizedKeys(file, uid, gid, strings.TrimSpace(pub), key, add)
	if err != nil {
		return "", err
	}
	jc.progress(ctx, 50)

	if err := jc.step("commission", "ssh-keys"); err != nil {
		return "", err
	}
	var nb struct {
		SSHKeys []string `json:"ssh-keys"`
	}
	if err := r.opts.Box.Get(ctx, box, &nb); err != nil {
		return "", fmt.Errorf("read the ssh keys of %s: %w", box, err)
	}
	keys := slices.DeleteFunc(slices.Clone(nb.SSHKeys), func(s string) bool { return s == credID })
	if add {
		keys = append(keys, credID)
	}
	if keys == nil {
		keys = []string{}
	}
	if err := r.opts.Box.Operation(ctx, box, "commission", map[string]any{"ssh-keys": keys}, nil); err != nil {
		return "", fmt.Errorf("commission the ssh keys of %s: %w", box, err)
	}

	res := sshKeyResult{Credential: credID, User: h.SSHUser, File: file, Changed: changed}
	switch {
	case add && changed:
		res.Message = "key added"
	case add:
		res.Message = "key was already authorized"
	case changed:
		res.Message = "key revoked"
	default:
		res.Message = "key was not authorized"
	}
	b, err := json.Marshal(res)
	if err != nil {
		return "", fmt.Errorf("encode result: %w", err)
	}
	return string(b), nil
}

// publicKey reads the credential's public-key from the job context, or
// with the box session when the context does not carry it.
func (r *Runner) publicKey(ctx context.Context, jc *jobContext, credID string) (string, error) {
	var cred struct {
		PublicKey string `json:"public-key"`
	}
	docs := r.jobContextDocs(ctx, jc.job.ID, jc.log)
	if raw, ok := docs[credID]; ok {
		if err := json.Unmarshal(raw, &cred); err != nil {
			return "", fmt.Errorf("read %s from the job context: %w", credID, err)
		}
	} else if err := r.opts.Box.Get(ctx, credID, &cred); err != nil {
		return "", fmt.Errorf("read %s: %w", credID, err)
	}
	if strings.TrimSpace(cred.PublicKey) == "" {
		return "", fmt.Errorf("%s has no public-key", credID)
	}
	return cred.PublicKey, nil
}

// editAuthorizedKeys adds line (unless its key is there) or removes every
// line of key, keeping everything else. ~/.ssh (0700) and the file (0600)
// are created owned by the user; the file is replaced atomically. It
// reports whether the file changed.
func editAuthorizedKeys(file string, uid, gid int, line string, key sshKey, add bool) (bool, error) {
	dir := filepath.Dir(file)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return false, fmt.Errorf("create %s: %w", dir, err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return false, fmt.Errorf("give %s to its user: %w", dir, err)
		}
	} else if err != nil {
		return false, fmt.Errorf("check %s: %w", dir, err)
	}
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", file, err)
	}
	var lines []string
	if len(old) > 0 {
		lines = strings.Split(strings.TrimRight(string(old), "\n"), "\n")
	}
	found := false
	kept := lines[:0:0]
	for _, l := range lines {
		if k, ok := parseSSHKey(l); ok && k == key {
			found = true
			if !add {
				continue
			}
		}
		kept = append(kept, l)
	}
	switch {
	case add && found, !add && !found:
		return false, nil
	case add:
		kept = append(kept, line)
	}
	content := strings.Join(kept, "\n")
	if len(kept) > 0 {
		content += "\n"
	}
	tmp, err := os.CreateTemp(dir, ".authorized_keys-*")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Chown(uid, gid); err != nil {
		tmp.Close()
		return false, fmt.Errorf("give %s to its user: %w", file, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return false, fmt.Errorf("replace %s: %w", file, err)
	}
	return true, nil
}
