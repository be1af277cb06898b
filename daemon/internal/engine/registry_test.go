package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/engine/registrytest"
)

// TestApplyPullsFromPrivateRegistry pulls the test image from a real
// registry (distribution, htpasswd auth) on 127.0.0.1: refused without
// credentials and with a wrong password, pulled and run with the right one.
// No password reaches an error or the engine's log.
func TestApplyPullsFromPrivateRegistry(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	cli := h.e.Client()

	const user = "berth-ci"
	pass := "reg-pass-" + randHex(8)
	wrong := "wrong-pass-" + randHex(8)
	reg := registrytest.Start(t, user, pass)
	ref := reg.Host() + "/team/testapp:" + h.appID
	reg.Push(t, cli, h.image, ref)
	// Registered after Push, so it runs before Push's removal of the
	// pulled image: the containers go first.
	enginetest.CleanupApp(t, cli, h.appID)

	// Only the registry has the reference now.
	if _, err := cli.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil {
		t.Fatalf("remove local %s: %v", ref, err)
	}
	if ok, err := h.e.ImagePresent(ctx, ref); err != nil || ok {
		t.Fatalf("ImagePresent(%s) = %v, %v after removal", ref, ok, err)
	}
	svc := h.web(nil)
	svc.Image = ref
	app := h.app(svc)

	checkNoLeak := func(what string, err error) {
		t.Helper()
		for _, secret := range []string{pass, wrong} {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s: a password is in the error: %v", what, err)
			}
			if strings.Contains(h.logs.String(), secret) {
				t.Errorf("%s: a password is in the engine's log:\n%s", what, h.logs.String())
			}
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		err := h.e.Apply(ctx, app, creates("web"), Auth{reg.Host(): {Username: user, Password: wrong}})
		if err == nil {
			t.Fatal("Apply with a wrong password succeeded")
		}
		msg := err.Error()
		if !strings.Contains(msg, ref) || !strings.Contains(msg, "refused the credentials") || !strings.Contains(msg, user) {
			t.Errorf("Apply: %v\nwant an error naming %s and saying the registry refused the credentials of %s", err, ref, user)
		}
		t.Logf("wrong password: %v", err)
		checkNoLeak("wrong password", err)
		if cs := mustList(t, h.e, h.appID); len(cs) != 0 {
			t.Errorf("containers created: %+v", cs)
		}
	})

	t.Run("no credentials", func(t *testing.T) {
		// Credentials for another registry do not count.
		err := h.e.Apply(ctx, app, creates("web"), Auth{"registry.example.com": {Username: user, Password: pass}})
		if err == nil {
			t.Fatal("Apply without credentials succeeded")
		}
		msg := err.Error()
		if !strings.Contains(msg, ref) || !strings.Contains(msg, "no credentials for it") || !strings.Contains(msg, reg.Host()) {
			t.Errorf("Apply: %v\nwant an error naming %s and saying berth has no credentials for %s", err, ref, reg.Host())
		}
		t.Logf("no credentials: %v", err)
		checkNoLeak("no credentials", err)
	})

	t.Run("right password", func(t *testing.T) {
		// Nuvla gives the registry as a URL; it matches the image's host.
		auth := Auth{"http://" + reg.Host(): {Username: user, Password: pass}}
		err := h.e.Apply(ctx, app, creates("web"), auth)
		checkNoLeak("right password", err)
		if err != nil {
			t.Fatalf("Apply with the registry's credentials: %v", err)
		}
		if ok, err := h.e.ImagePresent(ctx, ref); err != nil || !ok {
			t.Fatalf("ImagePresent(%s) = %v, %v after the pull", ref, ok, err)
		}
		cs := mustList(t, h.e, h.appID)
		if len(cs) != 1 || cs[0].State != apps.StateRunning || cs[0].Image != ref {
			t.Fatalf("containers %+v, want one running from %s", cs, ref)
		}
		if !strings.Contains(h.logs.String(), "pulled image") {
			t.Errorf("engine log lacks the pull:\n%s", h.logs.String())
		}
	})

	// Removing the app removes the pulled reference too.
	if err := h.e.RemoveApp(ctx, h.appID, true, true); err != nil {
		t.Fatalf("RemoveApp: %v", err)
	}
	if ok, err := h.e.ImagePresent(ctx, ref); err != nil || ok {
		t.Errorf("ImagePresent(%s) = %v, %v after RemoveApp; want removed", ref, ok, err)
	}
	if ok, err := h.e.ImagePresent(ctx, h.image); err != nil || !ok {
		t.Errorf("ImagePresent(%s) = %v, %v; want the shared test image kept", h.image, ok, err)
	}
}

func TestPullErrorSaysWhyTheRegistryRefused(t *testing.T) {
	const ref = "registry.example.com:5000/team/app:1"
	cred := Credential{Username: "ci", Password: "hunter2", ServerAddress: "registry.example.com:5000"}
	refused := errors.New("Error response from daemon: unauthorized: authentication required")

	err := pullError(ref, cred, true, refused)
	if msg := err.Error(); !strings.Contains(msg, ref) || !strings.Contains(msg, `registry registry.example.com:5000 refused the credentials of user "ci"`) ||
		strings.Contains(msg, "hunter2") || !errors.Is(err, refused) {
		t.Errorf("refused credentials: %v", err)
	}
	anon := errors.New(`Head "http://registry.example.com:5000/v2/team/app/manifests/1": no basic auth credentials`)
	if msg := pullError(ref, Credential{}, false, anon).Error(); !strings.Contains(msg, "refused an anonymous pull") || !strings.Contains(msg, ref) {
		t.Errorf("anonymous: %s", msg)
	}
	other := errors.New("manifest unknown")
	if msg := pullError(ref, cred, true, other).Error(); msg != "pull image "+ref+": manifest unknown" {
		t.Errorf("other error: %s", msg)
	}
	for _, m := range []string{
		"denied: requested access to the resource is denied",
		"pull access denied for x, repository does not exist or may require 'docker login'",
		"unauthorized: incorrect username or password",
	} {
		if !isAuthError(errors.New(m)) {
			t.Errorf("isAuthError(%q) = false", m)
		}
	}
}
