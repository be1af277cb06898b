package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
)

// dockerHub is the registry host of images named without one.
const dockerHub = "docker.io"

// Credential is a login to one image registry. Its String, GoString and
// LogValue methods hide the password, so printing or logging a Credential by
// mistake leaks nothing.
type Credential struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	ServerAddress string `json:"server-address,omitempty"`
}

// String describes the credential without its password.
func (c Credential) String() string {
	return fmt.Sprintf("Credential{Username:%q ServerAddress:%q Password:<redacted>}", c.Username, c.ServerAddress)
}

// GoString is String, so %#v hides the password too.
func (c Credential) GoString() string { return c.String() }

// LogValue hides the password from slog.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", c.Username), slog.String("server", c.ServerAddress))
}

// Auth holds registry credentials keyed by registry host ("docker.io",
// "registry.example.com:5000"). Keys may also be written as URLs
// ("https://index.docker.io/v1/"); they are matched by host.
type Auth map[string]Credential

// For returns the credential for the registry that serves ref, if any.
func (a Auth) For(ref string) (Credential, bool) {
	if len(a) == 0 {
		return Credential{}, false
	}
	host := ImageRegistry(ref)
	for k, c := range a {
		if RegistryHost(k) == host {
			return c, true
		}
	}
	return Credential{}, false
}

// ImageRegistry returns the registry host of an image reference:
// "docker.io" for "nginx" or "library/nginx:1", "ghcr.io" for
// "ghcr.io/x/y". An unparsable reference yields "docker.io".
func ImageRegistry(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return dockerHub
	}
	return RegistryHost(reference.Domain(named))
}

// RegistryHost normalises a registry address: scheme and path are dropped,
// the host is lower-cased, and Docker Hub's aliases become "docker.io".
func RegistryHost(addr string) string {
	h := strings.TrimSpace(addr)
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	h = strings.ToLower(h)
	switch h {
	case "", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return dockerHub
	}
	return h
}

// ImagePresent reports whether the image is in the local image store.
func (e *Engine) ImagePresent(ctx context.Context, ref string) (bool, error) {
	_, err := e.cli.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if IsNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

// ensureImage pulls ref unless it is present, with the matching credential.
func (e *Engine) ensureImage(ctx context.Context, ref, registryHint string, auth Auth) error {
	ok, err := e.ImagePresent(ctx, ref)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	cred, found := Credential{}, false
	if registryHint != "" {
		for k, c := range auth {
			if RegistryHost(k) == RegistryHost(registryHint) {
				cred, found = c, true
				break
			}
		}
	}
	if !found {
		cred, found = auth.For(ref)
	}
	return e.pull(ctx, ref, cred, found)
}

// pull pulls ref, authenticated with cred when found is true, and explains
// a refusal without revealing the password.
func (e *Engine) pull(ctx context.Context, ref string, cred Credential, found bool) error {
	return e.pullWithProgress(ctx, ref, cred, found, nil)
}

// pullWithProgress is pull, handing every progress message to fn (if set).
func (e *Engine) pullWithProgress(ctx context.Context, ref string, cred Credential, found bool, fn func(jsonMessage)) error {
	var opts image.PullOptions
	if found {
		addr := cred.ServerAddress
		if addr == "" {
			addr = ImageRegistry(ref)
		}
		enc, err := registry.EncodeAuthConfig(registry.AuthConfig{
			Username: cred.Username, Password: cred.Password, ServerAddress: addr,
		})
		if err != nil {
			return fmt.Errorf("encode credentials for %s: %w", addr, err)
		}
		opts.RegistryAuth = enc
	}
	e.log.Info("pulling image", "image", ref, "registry", ImageRegistry(ref), "authenticated", found)
	rc, err := e.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return pullError(ref, cred, found, err)
	}
	defer rc.Close()
	if err := drainProgress(rc, fn); err != nil {
		return pullError(ref, cred, found, err)
	}
	e.log.Info("pulled image", "image", ref)
	return nil
}

// pullError says what a failed pull of ref means. When the registry turned
// the pull down for want of (valid) credentials, it says so, naming the
// registry and the user, never the password.
func pullError(ref string, cred Credential, authenticated bool, err error) error {
	if !isAuthError(err) {
		return fmt.Errorf("pull image %s: %w", ref, err)
	}
	host := ImageRegistry(ref)
	if authenticated {
		return fmt.Errorf("pull image %s: registry %s refused the credentials of user %q: %w", ref, host, cred.Username, err)
	}
	return fmt.Errorf("pull image %s: registry %s refused an anonymous pull and berth has no credentials for it "+
		"(add a registry credential for %s to the deployment): %w", ref, host, host, err)
}

// isAuthError reports whether a pull error says the registry wants (other)
// credentials. Docker reports most registry refusals as plain text.
func isAuthError(err error) bool {
	if cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{
		"unauthorized",
		"authentication required",
		"no basic auth credentials",
		"incorrect username or password",
		"requested access to the resource is denied",
		"may require 'docker login'",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// jsonMessage is the part of Docker's progress stream berth reads: errors,
// and each layer's progress.
type jsonMessage struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	ProgressDetail struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// drainJSONMessages reads a pull or build progress stream to its end and
// returns the first error it reports.
func drainJSONMessages(r io.Reader) error { return drainProgress(r, nil) }

// drainProgress is drainJSONMessages, handing every message to fn (if set).
func drainProgress(r io.Reader, fn func(jsonMessage)) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read progress stream: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if fn != nil {
			fn(m)
		}
	}
}
