package sessions

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	dockerclient "github.com/docker/docker/client"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/api"
	"github.com/berth-edge/berth/daemon/internal/caller"
	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/events"
	"github.com/berth-edge/berth/daemon/internal/reconcile"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// testImage is the image the Docker tests launch: FROM scratch with
// busybox (/bin/sh), the testapp (entrypoint, HTTP on $PORT=5000), a fake
// `jupyter` that serves the testapp on 8888, the xwindow X11 client, a
// file baked into the home (/home/user/.baked) and /skaha/startup.sh.
const testImage = "berth-session-test:1"

var (
	imageOnce sync.Once
	imageErr  error
)

func sessionImage(t *testing.T, cli *dockerclient.Client) string {
	t.Helper()
	if f, err := elf.Open("/bin/busybox"); err != nil {
		t.Skip("busybox-static is not installed (/bin/busybox): apt-get install busybox-static")
	} else {
		dynamic := f.Section(".interp") != nil
		_ = f.Close()
		if dynamic {
			t.Skip("/bin/busybox is dynamically linked: apt-get install busybox-static")
		}
	}
	imageOnce.Do(func() { imageErr = buildSessionImage(cli, t.TempDir()) })
	if imageErr != nil {
		t.Fatalf("build %s: %v", testImage, imageErr)
	}
	return testImage
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

func buildSessionImage(cli *dockerclient.Client, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins := map[string][]byte{}
	for name, pkg := range map[string]string{"testapp": "./daemon/internal/testapp", "xwindow": "./daemon/internal/testapp/xwindow"} {
		out := filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		bins[name] = b
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	add := func(h *tar.Header, data []byte) {
		h.Size = int64(len(data))
		h.ModTime = time.Unix(0, 0)
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		_ = tw.WriteHeader(h)
		_, _ = tw.Write(data)
	}
	add(&tar.Header{Name: "Dockerfile", Mode: 0o644}, []byte("FROM scratch\nCOPY rootfs/ /\n"+
		"ENV HOME=/home/user PORT=5000 PATH=/bin\nENTRYPOINT [\"/testapp\"]\n"))
	for _, d := range []string{"rootfs/", "rootfs/bin/", "rootfs/home/", "rootfs/home/user/", "rootfs/skaha/"} {
		add(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}, nil)
	}
	add(&tar.Header{Name: "rootfs/tmp/", Mode: 0o1777, Typeflag: tar.TypeDir}, nil)
	add(&tar.Header{Name: "rootfs/bin/busybox", Mode: 0o755}, busybox)
	add(&tar.Header{Name: "rootfs/bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"}, nil)
	add(&tar.Header{Name: "rootfs/bin/jupyter", Mode: 0o755}, []byte("#!/bin/sh\nPORT=8888 exec /testapp\n"))
	add(&tar.Header{Name: "rootfs/testapp", Mode: 0o755}, bins["testapp"])
	add(&tar.Header{Name: "rootfs/xwindow", Mode: 0o755}, bins["xwindow"])
	add(&tar.Header{Name: "rootfs/home/user/.baked", Mode: 0o644}, []byte("baked into the image\n"))
	add(&tar.Header{Name: "rootfs/skaha/startup.sh", Mode: 0o755}, []byte("#!/bin/sh\nexec /xwindow \"berth-xtest-$skaha_sessionid\"\n"))
	if err := tw.Close(); err != nil {
		return err
	}
	return imageBuild(ctx, cli, testImage, &ctxTar)
}

// buildImage builds tag from a Dockerfile and files.
func buildImage(ctx context.Context, cli *dockerclient.Client, tag, dockerfile string, files map[string][]byte) error {
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	files["Dockerfile"] = []byte(dockerfile)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return imageBuild(ctx, cli, tag, &ctxTar)
}

func imageBuild(ctx context.Context, cli *dockerclient.Client, tag string, buildContext io.Reader) error {
	resp, err := cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Labels: map[string]string{"berth.test": "true"},
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// fakeBackend is the minimum the api server needs.
type fakeBackend struct{}

func (fakeBackend) Status(context.Context) client.Status       { return client.Status{} }
func (fakeBackend) Apps(context.Context) ([]client.App, error) { return nil, nil }

// env is a Manager behind the real api server, on real Docker and bbolt.
type env struct {
	t     *testing.T
	cli   *dockerclient.Client
	st    *store.Store
	eng   *engine.Engine
	recon *reconcile.Reconciler
	hub   *events.Hub
	m     *Manager
	h     http.Handler
	dir   string
	image string
}

var (
	alice = caller.Caller{UID: 41001, GID: 41001, Name: "alice", Groups: []int{41001, 41100}}
	bob   = caller.Caller{UID: 41002, GID: 41002, Name: "bob", Groups: []int{41002}}
	admin = caller.Caller{UID: 41003, GID: 41003, Name: "admin", Groups: []int{41003}, Admin: true}
	root  = caller.Caller{UID: 0, GID: 0, Name: "root", Admin: true}
)

func newEnv(t *testing.T, tweak func(*Options)) *env {
	t.Helper()
	cli := enginetest.Docker(t)
	e := &env{t: t, cli: cli, dir: t.TempDir(), hub: &events.Hub{}}
	e.image = sessionImage(t, cli)
	st, err := store.Open(filepath.Join(e.dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e.st = st
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	eng, err := engine.New(context.Background(), engine.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	e.eng = eng
	e.recon = reconcile.New(st, eng, log)
	cfg := config.Default().Sessions
	cfg.MaxInteractive = 2
	opts := Options{
		Store: st, Recon: e.recon, Engine: eng, Hub: e.hub, Logger: log, Config: cfg, StateDir: e.dir,
		WebBase:  func() string { return "http://127.0.0.1:8484" },
		Hostname: "testbox", HostCPUs: 2, HostMemGB: 8, ReadyTimeout: 20 * time.Second,
	}
	if tweak != nil {
		tweak(&opts)
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	e.m = m
	srv, err := api.New(fakeBackend{}, api.Options{Socket: filepath.Join(e.dir, "api.sock"), Routes: []api.Routes{m.Routes()}})
	if err != nil {
		t.Fatal(err)
	}
	e.h = srv.Handler()
	for _, c := range []caller.Caller{alice, bob, admin} {
		vol := HomeVolumeName(c.UID)
		t.Cleanup(func() { _ = cli.VolumeRemove(context.Background(), vol, true) })
	}
	return e
}

// do sends a request as c (nil: no caller) and returns the code and body.
func (e *env) do(c *caller.Caller, method, path string, form url.Values) (int, string) {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c != nil {
		r = r.WithContext(caller.With(r.Context(), *c))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// launch launches as c and returns the id; the session's containers are
// removed when the test ends.
func (e *env) launch(c caller.Caller, form url.Values) string {
	e.t.Helper()
	code, body := e.do(&c, http.MethodPost, "/skaha/v1/session", form)
	if code != http.StatusOK {
		e.t.Fatalf("launch %v: %d %s", form, code, body)
	}
	id := strings.TrimSpace(body)
	if len(id) != 8 || !strings.HasSuffix(body, "\n") {
		e.t.Fatalf("launch answered %q, want an 8-character id and a newline", body)
	}
	enginetest.CleanupApp(e.t, e.cli, id)
	// Stop the launches in flight before their containers are cleaned up.
	e.t.Cleanup(e.m.Close)
	return id
}

func (e *env) get(c caller.Caller, id string) (client.Session, int) {
	e.t.Helper()
	code, body := e.do(&c, http.MethodGet, "/api/v1/session/"+id, nil)
	var s client.Session
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			e.t.Fatalf("session %s: %v: %s", id, err, body)
		}
	}
	return s, code
}

// wait polls the session until its status is one of want.
func (e *env) wait(c caller.Caller, id string, want ...string) client.Session {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var s client.Session
	for time.Now().Before(deadline) {
		var code int
		s, code = e.get(c, id)
		if code != http.StatusOK {
			e.t.Fatalf("session %s: %d", id, code)
		}
		for _, w := range want {
			if s.Status == w {
				return s
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("session %s is %s (%s), want %v", id, s.Status, s.Message, want)
	return s
}
