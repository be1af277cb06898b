package sessions

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine/registrytest"
	"github.com/berth-edge/berth/daemon/internal/events"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// TestProfileLaunch launches an admin profile whose image must be pulled,
// with the profile's credential, from a real registry, and checks the
// pull progress events.
func TestProfileLaunch(t *testing.T) {
	reg := registrytest.Start(t, "puller", "s3cret-pw")
	ref := reg.Ref("astro/batch:1")
	var e *env
	e = newEnv(t, func(o *Options) {
		o.Profiles = fakeProfiles{"batch": {
			Name: "batch", Image: ref, Type: client.TypeHeadless,
			Command: []string{"/testapp"}, Env: map[string]string{"TESTAPP_EXIT": "0", "FROM_PROFILE": "yes"},
			Cores: 1, RAMGB: 1, RetryLimit: 2, PullCredential: "reg",
			Storages: []client.ProfileStorage{
				{Name: "berth-test-profile-data", Target: "/data"},
				{Name: "berth-test-profile-missing", Target: "/missing", Optional: true},
			},
		}}
	})
	ctx := context.Background()
	// An image with a layer of its own, so the pull downloads something.
	local := "berth-session-test:pull-" + strings.ToLower(t.Name())
	blob := make([]byte, 2<<20)
	_, _ = rand.Read(blob)
	if err := buildImage(ctx, e.cli, local, "FROM "+e.image+"\nCOPY blob /blob\n", map[string][]byte{"blob": blob}); err != nil {
		t.Fatal(err)
	}
	reg.Push(t, e.cli, local, ref)
	for _, r := range []string{ref, local} {
		if _, err := e.cli.ImageRemove(ctx, r, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = e.cli.ImageRemove(context.Background(), ref, image.RemoveOptions{}) })
	if _, err := e.cli.VolumeCreate(ctx, volume.CreateOptions{Name: "berth-test-profile-data"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.cli.VolumeRemove(context.Background(), "berth-test-profile-data", true) })
	if err := e.st.PutRegistry(store.RegistryCredential{Name: "reg", Server: reg.Host(), Username: "puller", Password: "s3cret-pw"}); err != nil {
		t.Fatal(err)
	}
	sub := e.hub.Subscribe(1024)
	defer e.hub.Unsubscribe(sub)

	id := e.launch(alice, form("name", "p1", "profile", "batch"))
	s := e.wait(alice, id, client.StatusCompleted, client.StatusFailed)
	_, logs := e.do(&alice, http.MethodGet, "/api/v1/session/"+id+"?view=logs", nil)
	if s.Status != client.StatusCompleted || s.Profile != "batch" || s.Image != ref || s.RequestedCPUCores != "1" {
		t.Fatalf("session %+v\n%s", s, logs)
	}
	if !strings.Contains(logs, "FROM_PROFILE=yes") {
		t.Errorf("logs:\n%s", logs)
	}
	ins, err := e.cli.ContainerInspect(ctx, apps.ContainerName(id, ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, m := range ins.Mounts {
		targets = append(targets, m.Destination)
	}
	if !slices.Contains(targets, "/data") || slices.Contains(targets, "/missing") ||
		ins.HostConfig.RestartPolicy.Name != container.RestartPolicyOnFailure || ins.HostConfig.RestartPolicy.MaximumRetryCount != 2 {
		t.Errorf("mounts %v restart %+v", targets, ins.HostConfig.RestartPolicy)
	}

	var last client.PullProgress
	n := 0
	for len(sub.C) > 0 {
		msg := <-sub.C
		if msg.Type != events.TypePull {
			continue
		}
		var ev struct{ Data client.PullProgress }
		if err := json.Unmarshal(msg.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Data.Session == id {
			n++
			last = ev.Data
		}
	}
	if n < 2 || !last.Done || last.Layers == 0 || last.LayersDone != last.Layers || last.Total < 2<<20 || last.Current != last.Total || last.Error != "" || last.Image != ref {
		t.Errorf("%d pull events, last %+v", n, last)
	}
	if strings.Contains(logs, "s3cret-pw") {
		t.Error("the registry password reached the session")
	}
}

// TestDesktopApp runs a desktop-app whose /skaha/startup.sh maps an X
// window on an Xvfb display, as a desktop user's session would.
func TestDesktopApp(t *testing.T) {
	for _, tool := range []string{"Xvfb", "xwininfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install xvfb x11-utils)", tool)
		}
	}
	e := newEnv(t, nil)
	num := 0
	for n := 90; n < 200; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); os.IsNotExist(err) {
			if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); os.IsNotExist(err) {
				num = n
				break
			}
		}
	}
	if num == 0 {
		t.Skip("no free X display number")
	}
	display := fmt.Sprintf(":%d", num)
	xvfb := exec.Command("Xvfb", display, "-ac", "-nolisten", "tcp")
	if err := xvfb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = xvfb.Process.Signal(syscall.SIGTERM); _ = xvfb.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", num)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Xvfb did not create its socket")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cookie := "00112233445566778899aabbccddeeff"
	id := e.launch(alice, form("name", "xapp", "image", e.image, "type", "desktop-app", "display", display, "xauth", cookie))
	s := e.wait(alice, id, client.StatusRunning, client.StatusFailed, client.StatusCompleted)
	if s.Status != client.StatusRunning || s.ConnectURL != "" {
		_, logs := e.do(&alice, http.MethodGet, "/api/v1/session/"+id+"?view=logs", nil)
		t.Fatalf("session %+v\n%s", s, logs)
	}
	want := "berth-xtest-" + id
	var tree string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command("xwininfo", "-root", "-tree", "-display", display).CombinedOutput()
		if err != nil {
			t.Fatalf("xwininfo: %v\n%s", err, out)
		}
		if tree = string(out); strings.Contains(tree, `"`+want+`"`) {
			break
		}
	}
	if !strings.Contains(tree, `"`+want+`"`) {
		_, logs := e.do(&alice, http.MethodGet, "/api/v1/session/"+id+"?view=logs", nil)
		t.Fatalf("no window %q on %s:\n%s\nlogs:\n%s", want, display, tree, logs)
	}

	xa := filepath.Join(e.dir, "sessions", id, "Xauthority")
	fi, err := os.Stat(xa)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || (ok && os.Geteuid() == 0 && st.Uid != uint32(alice.UID)) {
		t.Errorf("Xauthority mode %v owner %v", fi.Mode(), fi.Sys())
	}
	ins, err := e.cli.ContainerInspect(context.Background(), apps.ContainerName(id, ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ins.Config.Env, "XAUTHORITY="+XauthorityPath) || !slices.Contains(ins.Config.Env, "DISPLAY="+display) {
		t.Errorf("env %v", ins.Config.Env)
	}

	if code, body := e.do(&alice, http.MethodDelete, "/api/v1/session/"+id, nil); code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Dir(xa)); !os.IsNotExist(err) {
		t.Errorf("the session's directory survived: %v", err)
	}
	out, _ := exec.Command("xwininfo", "-root", "-tree", "-display", display).CombinedOutput()
	if strings.Contains(string(out), want) {
		t.Error("the window survived the session")
	}
}
