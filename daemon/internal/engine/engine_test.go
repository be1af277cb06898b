package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
)

// harness is one test's engine, image and unique app id.
type harness struct {
	e     *Engine
	image string
	appID string
	logs  *strings.Builder
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	cli := enginetest.Docker(t)
	img := enginetest.BuildTestImage(t, enginetest.TestImage)
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := New(t.Context(), Options{Logger: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	id := "bt-" + randHex(6)
	enginetest.CleanupApp(t, cli, id)
	return &harness{e: e, image: img, appID: id, logs: &logs}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (h *harness) app(svcs ...apps.Service) *apps.App {
	return &apps.App{ID: h.appID, Kind: apps.KindNuvlaComponent, Name: "test", Services: svcs}
}

func (h *harness) web(env map[string]string) apps.Service {
	return apps.Service{
		Name:    "web",
		Image:   h.image,
		Env:     env,
		Ports:   []apps.Port{{Target: 8080, Protocol: "tcp"}},
		Restart: apps.RestartPolicy{Condition: apps.RestartNone},
	}
}

func creates(svcs ...string) []apps.Action {
	var as []apps.Action
	for _, s := range svcs {
		as = append(as, apps.Action{Type: apps.ActionCreate, Service: s, Reason: "test"})
	}
	return as
}

func mustList(t *testing.T, e *Engine, appID string) []apps.Container {
	t.Helper()
	cs, err := e.List(t.Context(), appID)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return cs
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				var m map[string]any
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatalf("GET %s: bad JSON %q: %v", url, body, err)
				}
				return m
			}
			lastErr = fmt.Errorf("status %d, read error %v", resp.StatusCode, rerr)
		} else {
			lastErr = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return nil
}

func TestApplyCreateStartServesHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(h.web(map[string]string{"GREETING": "hello-berth", "DB_PASSWORD": "hunter2"}))
	if err := h.e.Apply(ctx, app, creates("web"), nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	cs := mustList(t, h.e, h.appID)
	if len(cs) != 1 {
		t.Fatalf("List: %d containers, want 1: %+v", len(cs), cs)
	}
	c := cs[0]
	if c.State != apps.StateRunning {
		t.Fatalf("state %q, want running", c.State)
	}
	if c.Name != apps.ContainerName(h.appID, "web") || c.AppID != h.appID || c.Service != "web" ||
		c.Kind != apps.KindNuvlaComponent || c.SpecHash != app.Services[0].SpecHash() || c.Image != h.image {
		t.Errorf("container fields: %+v", c)
	}
	if len(c.Ports) != 1 || c.Ports[0].Target != 8080 || c.Ports[0].Protocol != "tcp" || c.Ports[0].HostPort == 0 || c.Ports[0].HostIP != "" {
		t.Fatalf("ports %+v, want one ephemeral binding of 8080/tcp on all addresses", c.Ports)
	}
	m := getJSON(t, "http://127.0.0.1:"+strconv.Itoa(c.Ports[0].HostPort)+"/")
	env, _ := m["env"].(map[string]any)
	if env["GREETING"] != "hello-berth" {
		t.Errorf("env from the app: %v", m)
	}

	// Inspect agrees with List.
	ic, err := h.e.Inspect(ctx, c.ID)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if ic.ID != c.ID || ic.Name != c.Name || ic.State != c.State || ic.SpecHash != c.SpecHash ||
		len(ic.Ports) != 1 || ic.Ports[0] != c.Ports[0] {
		t.Errorf("Inspect %+v\nList    %+v", ic, c)
	}
	all, err := h.e.ListAll(ctx)
	if err != nil {
		t.Fatalf("ListAll: %v", err)
	}
	found := false
	for _, a := range all {
		found = found || a.ID == c.ID
	}
	if !found {
		t.Errorf("ListAll lacks %s", c.ID)
	}

	// The app printed its environment, with secrets redacted; the engine
	// never logged them.
	logs, err := h.e.Logs(ctx, c.ID, 0)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if !strings.Contains(logs, "GREETING=hello-berth") || !strings.Contains(logs, "DB_PASSWORD=<redacted>") {
		t.Errorf("container logs lack the env lines:\n%s", logs)
	}
	if strings.Contains(logs, "hunter2") || strings.Contains(h.logs.String(), "hunter2") {
		t.Errorf("a secret leaked into logs")
	}
}

func TestApplyIdempotent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(h.web(nil))
	for i := range 2 {
		if err := h.e.Apply(ctx, app, creates("web"), nil); err != nil {
			t.Fatalf("Apply #%d: %v", i+1, err)
		}
	}
	cs := mustList(t, h.e, h.appID)
	if len(cs) != 1 || cs[0].State != apps.StateRunning {
		t.Fatalf("after two applies: %+v, want one running container", cs)
	}
	// What the engine reports is what the planner expects: nothing to do.
	if acts := apps.Plan(app, cs, apps.ModeStart); len(acts) != 0 {
		t.Fatalf("plan after apply: %+v", acts)
	}
	// Removing a container that is gone is success too.
	rm := []apps.Action{{Type: apps.ActionRemove, Service: "web", ContainerID: cs[0].ID}}
	for i := range 2 {
		if err := h.e.Apply(ctx, app, rm, nil); err != nil {
			t.Fatalf("remove #%d: %v", i+1, err)
		}
	}
	if cs := mustList(t, h.e, h.appID); len(cs) != 0 {
		t.Fatalf("after remove: %+v", cs)
	}
}

func TestApplyChangedSpecRecreates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	app := h.app(h.web(map[string]string{"V": "1"}))
	if err := h.e.Apply(ctx, app, creates("web"), nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	old := mustList(t, h.e, h.appID)[0]

	app.Services[0].Env["V"] = "2"
	// A create for a changed spec whose name is taken is refused, not adopted.
	if err := h.e.Apply(ctx, app, creates("web"), nil); err == nil || !strings.Contains(err.Error(), "spec hash") {
		t.Fatalf("create over a stale container: err %v, want a spec-hash conflict", err)
	}
	acts := append([]apps.Action{{Type: apps.ActionRemove, Service: "web", ContainerID: old.ID, Reason: "spec changed"}}, creates("web")...)
	if err := h.e.Apply(ctx, app, acts, nil); err != nil {
		t.Fatalf("Apply changed: %v", err)
	}
	cs := mustList(t, h.e, h.appID)
	if len(cs) != 1 {
		t.Fatalf("after recreate: %+v", cs)
	}
	if cs[0].ID == old.ID || cs[0].SpecHash == old.SpecHash || cs[0].SpecHash != app.Services[0].SpecHash() {
		t.Fatalf("recreated %+v, old %+v", cs[0], old)
	}
}

func TestMountsAndRemoveApp(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	cli := h.e.Client()
	vol := h.appID + "-data"
	svc := h.web(nil)
	svc.User = "1000:1000"
	svc.CPUs = 0.5
	svc.MemoryMiB = 64
	svc.Command = []string{"--ignored-arg"}
	svc.Mounts = []apps.Mount{
		{Type: apps.MountVolume, Source: vol, Target: "/data"},
		{Type: apps.MountTmpfs, Target: "/scratch"},
	}
	app := h.app(svc)
	if err := h.e.Apply(ctx, app, creates("web"), nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	c := mustList(t, h.e, h.appID)[0]
	ins, err := cli.ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var sawVol, sawTmpfs bool
	for _, m := range ins.Mounts {
		if m.Type == mount.TypeVolume && m.Name == vol && m.Destination == "/data" {
			sawVol = true
		}
	}
	for _, m := range ins.HostConfig.Mounts {
		if m.Type == mount.TypeTmpfs && m.Target == "/scratch" {
			sawTmpfs = true
		}
	}
	if !sawVol || !sawTmpfs {
		t.Errorf("mounts: volume %v tmpfs %v\n%+v\n%+v", sawVol, sawTmpfs, ins.Mounts, ins.HostConfig.Mounts)
	}
	if ins.Config.User != "1000:1000" || ins.HostConfig.NanoCPUs != 5e8 || ins.HostConfig.Memory != 64<<20 ||
		len(ins.Config.Cmd) != 1 || ins.Config.Cmd[0] != "--ignored-arg" {
		t.Errorf("user %q nanocpus %d memory %d cmd %v", ins.Config.User, ins.HostConfig.NanoCPUs, ins.HostConfig.Memory, ins.Config.Cmd)
	}
	v, err := cli.VolumeInspect(ctx, vol)
	if err != nil {
		t.Fatalf("volume: %v", err)
	}
	if v.Labels[apps.LabelApp] != h.appID {
		t.Errorf("volume labels %v", v.Labels)
	}

	// Without removeVolumes the volume stays; with it, it goes.
	if err := h.e.RemoveApp(ctx, h.appID, false, false); err != nil {
		t.Fatalf("RemoveApp: %v", err)
	}
	if cs := mustList(t, h.e, h.appID); len(cs) != 0 {
		t.Fatalf("containers after RemoveApp: %+v", cs)
	}
	if _, err := cli.VolumeInspect(ctx, vol); err != nil {
		t.Fatalf("volume gone without removeVolumes: %v", err)
	}
	if err := h.e.Apply(ctx, app, creates("web"), nil); err != nil {
		t.Fatalf("Apply again: %v", err)
	}
	// The test image is shared with other tests, so removeImages must keep it
	// while they use it; it must not fail either.
	if err := h.e.RemoveApp(ctx, h.appID, true, false); err != nil {
		t.Fatalf("RemoveApp with volumes: %v", err)
	}
	if _, err := cli.VolumeInspect(ctx, vol); !IsNotFound(err) {
		t.Fatalf("volume after RemoveApp(removeVolumes): err %v, want not found", err)
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Volumes {
		if v.Labels[apps.LabelApp] == h.appID {
			t.Errorf("volume %s left", v.Name)
		}
	}
	if err := h.e.RemoveApp(ctx, h.appID, true, true); err != nil {
		t.Fatalf("RemoveApp of nothing: %v", err)
	}
}

func TestRemoveAppRemovesUnusedImage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	cli := h.e.Client()
	// A private tag of the test image: removing the app removes the tag,
	// and leaves the shared one.
	tag := "berth-testapp:rm-" + h.appID
	if err := cli.ImageTag(ctx, h.image, tag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = cli.ImageRemove(context.Background(), tag, imageRemoveOpts()) })
	svc := h.web(nil)
	svc.Image = tag
	if err := h.e.Apply(ctx, h.app(svc), creates("web"), nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := h.e.RemoveApp(ctx, h.appID, true, true); err != nil {
		t.Fatalf("RemoveApp: %v", err)
	}
	if ok, err := h.e.ImagePresent(ctx, tag); err != nil || ok {
		t.Errorf("ImagePresent(%s) = %v, %v; want removed", tag, ok, err)
	}
	if ok, err := h.e.ImagePresent(ctx, h.image); err != nil || !ok {
		t.Errorf("ImagePresent(%s) = %v, %v; want kept", h.image, ok, err)
	}
}

func TestRestartPolicies(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	var svcs []apps.Service
	conds := map[string]apps.RestartPolicy{
		"none":    {Condition: apps.RestartNone},
		"onfail":  {Condition: apps.RestartOnFailure, MaxAttempts: 3},
		"any":     {Condition: apps.RestartAny},
		"default": {},
	}
	want := map[string]container.RestartPolicy{
		"none":    {Name: "no"},
		"onfail":  {Name: "on-failure", MaximumRetryCount: 3},
		"any":     {Name: "unless-stopped"},
		"default": {Name: "no"},
	}
	var names []string
	for name, rp := range conds {
		s := h.web(nil)
		s.Name, s.Restart, s.Ports = name, rp, nil
		svcs = append(svcs, s)
		names = append(names, name)
	}
	if err := h.e.Apply(ctx, h.app(svcs...), creates(names...), nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, c := range mustList(t, h.e, h.appID) {
		ins, err := h.e.Client().ContainerInspect(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := ins.HostConfig.RestartPolicy; got != want[c.Service] {
			t.Errorf("service %s: restart policy %+v, want %+v", c.Service, got, want[c.Service])
		}
	}
	if _, err := restartPolicy(apps.RestartPolicy{Condition: "sometimes"}); err == nil {
		t.Error("unknown condition accepted")
	}
}

func TestNFSPreflight(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := ln.Addr().(*net.TCPAddr).Port
	closedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := closedLn.Addr().(*net.TCPAddr).Port
	closedLn.Close()

	nfs := func(o string) apps.Mount {
		return apps.Mount{Type: apps.MountVolume, Source: "v", Target: "/mnt/nfs",
			VolumeOptions: map[string]string{"type": "nfs", "o": o, "device": ":/export"}}
	}
	ctx := t.Context()
	if err := CheckNFS(ctx, nfs(fmt.Sprintf("addr=127.0.0.1,port=%d,nfsvers=4", open)), time.Second); err != nil {
		t.Errorf("open server: %v", err)
	}
	err = CheckNFS(ctx, nfs(fmt.Sprintf("addr=127.0.0.1,port=%d,nfsvers=4", closed)), time.Second)
	wantMsg := fmt.Sprintf("NFS server 127.0.0.1:%d for mount /mnt/nfs does not answer: ", closed)
	if err == nil || !strings.HasPrefix(err.Error(), wantMsg) {
		t.Errorf("closed server: %v, want %q...", err, wantMsg)
	}
	if err := CheckNFS(ctx, nfs("nfsvers=4,soft"), time.Second); err == nil || !strings.Contains(err.Error(), "/mnt/nfs") {
		t.Errorf("missing addr: %v, want an error naming the mount", err)
	}
	if err := CheckNFS(ctx, apps.Mount{Type: apps.MountVolume, Source: "plain", Target: "/x"}, time.Second); err != nil {
		t.Errorf("plain volume: %v", err)
	}
	if h, p, err := NFSServer(nfs("addr=10.0.0.5")); err != nil || h != "10.0.0.5" || p != 2049 {
		t.Errorf("default port: %s %d %v", h, p, err)
	}

	// Apply checks before creating anything: no container, no volume.
	hs := newHarness(t)
	svc := hs.web(nil)
	vol := hs.appID + "-nfs"
	m := nfs(fmt.Sprintf("addr=127.0.0.1,port=%d", closed))
	m.Source = vol
	svc.Mounts = []apps.Mount{m}
	err = hs.e.Apply(ctx, hs.app(svc), creates("web"), nil)
	if err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("Apply with NFS down: %v", err)
	}
	if cs := mustList(t, hs.e, hs.appID); len(cs) != 0 {
		t.Errorf("containers created: %+v", cs)
	}
	if _, err := hs.e.Client().VolumeInspect(ctx, vol); !IsNotFound(err) {
		t.Errorf("volume %s: err %v, want not found", vol, err)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	evs := h.e.Events(ctx)
	app := h.app(h.web(nil))
	if err := h.e.Apply(ctx, app, creates("web"), nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	id := mustList(t, h.e, h.appID)[0].ID
	if err := h.e.Client().ContainerKill(ctx, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for !seen["start"] || !seen["die"] {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("channel closed; seen %v", seen)
			}
			if ev.ContainerID != id {
				continue
			}
			if ev.AppID != h.appID || ev.Service != "web" {
				t.Errorf("event %+v", ev)
			}
			seen[ev.Action] = true
		case <-ctx.Done():
			t.Fatalf("timed out; seen %v", seen)
		}
	}
	cancel()
	// The channel closes once ctx is done.
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-evs:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("events channel not closed after cancel")
		}
	}
}

func TestApplyMissingImage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// A registry on a closed local port: nothing to pull from, quickly.
	img := "127.0.0.1:1/berth/absent:" + h.appID
	svc := h.web(nil)
	svc.Image = img
	auth := Auth{"127.0.0.1:1": {Username: "u", Password: "s3cr3t-pw"}}
	err := h.e.Apply(t.Context(), h.app(svc), creates("web"), auth)
	if err == nil || !strings.Contains(err.Error(), img) || !strings.Contains(err.Error(), "web") {
		t.Fatalf("Apply: %v, want an error naming the service and image %s", err, img)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") || strings.Contains(h.logs.String(), "s3cr3t-pw") {
		t.Errorf("password leaked: %v\n%s", err, h.logs.String())
	}
	if cs := mustList(t, h.e, h.appID); len(cs) != 0 {
		t.Errorf("containers created: %+v", cs)
	}
}

func TestNewUnreachable(t *testing.T) {
	t.Parallel()
	_, err := New(t.Context(), Options{Host: "unix:///nonexistent/docker.sock"})
	if err == nil || !strings.Contains(err.Error(), "systemctl start docker") {
		t.Fatalf("New on a missing socket: %v", err)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	si, err := h.e.Ping(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if si.Version == "" || si.APIVersion == "" || si.OS == "" || si.Arch == "" {
		t.Errorf("ServerInfo %+v", si)
	}
}

func TestExitedContainerLogs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	svc := h.web(map[string]string{"TESTAPP_EXIT": "3", "API_SECRET": "nope"})
	// As the planner plans it: create, then start. The start must not run
	// the one-shot a second time.
	acts := append(creates("web"), apps.Action{Type: apps.ActionStart, Service: "web", Reason: "new container"})
	if err := h.e.Apply(ctx, h.app(svc), acts, nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	id := mustList(t, h.e, h.appID)[0].ID
	deadline := time.Now().Add(15 * time.Second)
	var c apps.Container
	for time.Now().Before(deadline) {
		var err error
		if c, err = h.e.Inspect(ctx, id); err != nil {
			t.Fatal(err)
		}
		if c.State == apps.StateExited {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c.State != apps.StateExited || !strings.HasPrefix(c.Status, "Exited (3)") {
		t.Fatalf("container %+v, want exited with code 3", c)
	}
	logs, err := h.e.Logs(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(logs, "exiting with code 3") != 1 || strings.Contains(logs, "nope") {
		t.Errorf("logs:\n%s", logs)
	}
	if _, err := h.e.Inspect(ctx, "berth-no-such-container"); !IsNotFound(err) {
		t.Errorf("Inspect of a missing container: %v", err)
	}
}
