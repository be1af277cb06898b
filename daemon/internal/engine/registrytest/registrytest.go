// Package registrytest runs a real Docker registry in the test process: the
// registry of github.com/distribution/distribution/v3 with htpasswd (basic)
// authentication and its filesystem storage in the test's temporary
// directory. It listens on 127.0.0.1 only; Docker treats 127.0.0.0/8
// registries as insecure by default, so the local engine pushes to it and
// pulls from it over plain HTTP.
//
// The registry's own log (logrus) is discarded unless REGISTRYTEST_LOG is
// set. Only tests import this package.
package registrytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// The access controller and storage driver the registry is built with
	// register themselves by name.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Registry is one running registry.
type Registry struct {
	host     string
	username string
	password string
	app      *handlers.App
	srv      *http.Server
	served   chan error
	once     sync.Once
}

var quietOnce sync.Once

// Start runs a registry on 127.0.0.1:<random port> that accepts only
// username and password (checked against a bcrypt htpasswd file), and stops
// it when the test ends.
func Start(t testing.TB, username, password string) *Registry {
	t.Helper()
	if username == "" || password == "" {
		t.Fatal("registrytest.Start: username and password are required")
	}
	// The registry logs through the global logrus logger, a line for every
	// refused challenge and every probe for a blob it lacks: noise in test
	// output unless REGISTRYTEST_LOG is set.
	quietOnce.Do(func() {
		if os.Getenv("REGISTRYTEST_LOG") == "" {
			logrus.SetOutput(io.Discard)
		}
	})

	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("registrytest: bcrypt: %v", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(username+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatalf("registrytest: write htpasswd: %v", err)
	}
	storage := filepath.Join(dir, "storage")
	if err := os.Mkdir(storage, 0o700); err != nil {
		t.Fatalf("registrytest: %v", err)
	}

	// Loopback only, never every interface.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("registrytest: listen on 127.0.0.1: %v", err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": storage},
			"maintenance": configuration.Parameters{
				"uploadpurging": map[any]any{"enabled": false},
			},
			"delete": configuration.Parameters{"enabled": true},
		},
		Auth: configuration.Auth{
			"htpasswd": configuration.Parameters{"realm": "berth-registrytest", "path": htpasswd},
		},
	}
	// As the registry's own configuration loader defaults it: without it
	// GET /v2/_catalog lists nothing.
	cfg.Catalog.MaxEntries = 1000
	cfg.HTTP.Addr = ln.Addr().String()
	cfg.HTTP.Secret = hex.EncodeToString(secret)

	app, err := newApp(cfg)
	if err != nil {
		_ = ln.Close()
		t.Fatalf("registrytest: %v", err)
	}
	r := &Registry{
		host:     ln.Addr().String(),
		username: username,
		password: password,
		app:      app,
		srv:      &http.Server{Handler: app, ReadHeaderTimeout: 30 * time.Second},
		served:   make(chan error, 1),
	}
	go func() { r.served <- r.srv.Serve(ln) }()
	t.Cleanup(r.Close)
	return r
}

// newApp builds the registry application; handlers.NewApp panics on a bad
// configuration.
func newApp(cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("configure registry: %v", p)
		}
	}()
	return handlers.NewApp(context.Background(), cfg), nil
}

// Host is the registry's address, "127.0.0.1:port": the registry part of
// image references pushed to it.
func (r *Registry) Host() string { return r.host }

// Ref is the reference of repo:tag in this registry, e.g.
// "127.0.0.1:port/team/testapp:v1".
func (r *Registry) Ref(repoTag string) string { return r.host + "/" + repoTag }

// Username is the account the registry accepts.
func (r *Registry) Username() string { return r.username }

// AuthConfig is the registry's credential in Docker's terms.
func (r *Registry) AuthConfig() registry.AuthConfig {
	return registry.AuthConfig{Username: r.username, Password: r.password, ServerAddress: r.host}
}

// Push tags localRef as remoteRef (a reference in this registry) and pushes
// it through the Docker API with the registry's credential. The local
// remoteRef tag is removed when the test ends, if it is still there.
func (r *Registry) Push(t testing.TB, cli *client.Client, localRef, remoteRef string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := cli.ImageTag(ctx, localRef, remoteRef); err != nil {
		t.Fatalf("registrytest: tag %s as %s: %v", localRef, remoteRef, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = cli.ImageRemove(ctx, remoteRef, image.RemoveOptions{})
	})
	enc, err := registry.EncodeAuthConfig(r.AuthConfig())
	if err != nil {
		t.Fatalf("registrytest: encode credentials: %v", err)
	}
	rc, err := cli.ImagePush(ctx, remoteRef, image.PushOptions{RegistryAuth: enc})
	if err != nil {
		t.Fatalf("registrytest: push %s: %v", remoteRef, err)
	}
	defer rc.Close()
	if err := drain(rc); err != nil {
		t.Fatalf("registrytest: push %s: %v", remoteRef, err)
	}
}

// Close stops the registry. It is safe to call more than once.
func (r *Registry) Close() {
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(ctx)
		<-r.served
		_ = r.app.Shutdown()
	})
}

// drain reads a push progress stream to its end and returns the first error
// it reports.
func drain(rd io.Reader) error {
	dec := json.NewDecoder(rd)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
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
	}
}
