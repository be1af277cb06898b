package catalog

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/engine/registrytest"
	"github.com/berth-edge/berth/daemon/internal/store"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fixture is a real registry (distribution, htpasswd) holding:
//
//	team/notebook:1.0 and :1.10   berth.types=notebook,headless (one manifest)
//	team/plain:1                  no label: not listed
//	deep/sub/app:2                berth.types=desktop-app
//	multi:1                       an OCI index; this machine's image is labelled carta
//	odd:1                         berth.types=firefly (no known type): not listed
type fixture struct {
	reg       *registrytest.Registry
	user      string
	pass      string
	nb, deep  string // manifest digests
	multi     string // index digest
	pushImage func(repo, tag string, labels map[string]string) string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{user: "alice", pass: "reg-pass-" + randHex(6)}
	f.reg = registrytest.Start(t, f.user, f.pass)
	p := &pusher{t: t, base: "http://" + f.reg.Host(), user: f.user, pass: f.pass}
	f.pushImage = p.image
	nbLabels := map[string]string{TypesLabel: "notebook,headless", "other": "x"}
	f.nb = p.image("team/notebook", "1.0", nbLabels)
	if d := p.image("team/notebook", "1.10", nbLabels); d == f.nb {
		// A new random layer makes a new manifest; both tags are listed
		// with their own digests.
		t.Fatal("two pushes made one manifest")
	}
	p.image("team/plain", "1", nil)
	f.deep = p.image("deep/sub/app", "2", map[string]string{TypesLabel: "desktop-app"})
	f.multi = p.index("multi", "1", map[string]string{TypesLabel: "carta"})
	p.image("odd", "1", map[string]string{TypesLabel: "firefly"})
	return f
}

// shape reduces images to "id [types] source profile" lines; digests are
// checked separately.
func shape(images []client.Image) []string {
	var out []string
	for _, im := range images {
		out = append(out, fmt.Sprintf("%s %v %s %s", im.ID, im.Types, im.Source, im.Profile))
	}
	return out
}

func TestRegistrySourceBasicAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	st := openStore(t)
	if err := st.PutRegistry(store.RegistryCredential{Name: "lab", Server: f.reg.Host(), Username: f.user, Password: f.pass}); err != nil {
		t.Fatal(err)
	}
	host := f.reg.Host()
	cat, err := New(Options{
		Credentials: st,
		Registries:  []config.CatalogRegistry{{Name: "lab", URL: "http://" + host, Kind: "registry", Credential: "lab"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	cat.Refresh(ctx)
	if src := cat.Sources(); len(src) != 1 || src[0].Error != "" || src[0].Images != 4 || src[0].Refreshed == "" {
		t.Fatalf("sources: %+v", src)
	}
	got := cat.List(ctx, "")
	want := []string{
		host + "/deep/sub/app:2 [desktop-app] registry:lab ",
		host + "/multi:1 [carta] registry:lab ",
		host + "/team/notebook:1.0 [notebook headless] registry:lab ",
		host + "/team/notebook:1.10 [notebook headless] registry:lab ",
	}
	if s := shape(got); !reflect.DeepEqual(s, want) {
		t.Fatalf("List =\n%s\nwant\n%s", strings.Join(s, "\n"), strings.Join(want, "\n"))
	}
	if got[0].Digest != f.deep || got[1].Digest != f.multi || got[2].Digest != f.nb {
		t.Errorf("digests %s %s %s, want %s %s %s (the pushed manifests)", got[0].Digest, got[1].Digest, got[2].Digest, f.deep, f.multi, f.nb)
	}
	if s := shape(cat.List(ctx, client.TypeHeadless)); len(s) != 2 {
		t.Errorf("List(headless) = %v", s)
	}

	// Pulls use the stored credential of the registry serving the image.
	auth, err := cat.PullAuth(host + "/team/notebook:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := auth.For(host + "/team/notebook:1.0"); !ok || c.Username != f.user || c.Password != f.pass || c.ServerAddress != host {
		t.Errorf("PullAuth = %v", auth)
	}
	if auth, err := cat.PullAuth("docker.io/library/nginx:1"); err != nil || len(auth) != 0 {
		t.Errorf("PullAuth(docker hub) = %v, %v; want anonymous", auth, err)
	}

	// A new tag shows at the next refresh.
	f.pushImage("team/notebook", "2.0", map[string]string{TypesLabel: "notebook"})
	cat.Refresh(ctx)
	if n := len(cat.List(ctx, "")); n != 5 {
		t.Errorf("after a push: %d images, want 5", n)
	}

	// A wrong password: the source keeps its listing and says why it
	// failed, naming the user and never the password.
	wrong := "wrong-" + randHex(6)
	if err := st.PutRegistry(store.RegistryCredential{Name: "lab", Server: host, Username: f.user, Password: wrong}); err != nil {
		t.Fatal(err)
	}
	cat.Refresh(ctx)
	src := cat.Sources()[0]
	if !strings.Contains(src.Error, `refused the credentials of user "alice"`) || src.Images != 5 {
		t.Errorf("after a wrong password: %+v", src)
	}
	for _, secret := range []string{f.pass, wrong} {
		if strings.Contains(src.Error, secret) {
			t.Errorf("the error shows a password: %s", src.Error)
		}
	}
	if n := len(cat.List(ctx, "")); n != 5 {
		t.Errorf("after a failed refresh: %d images, want the last 5", n)
	}
	t.Logf("wrong password: %s", src.Error)

	// Anonymous access is refused too, with its own message.
	if err := st.DeleteRegistry("lab"); err != nil {
		t.Fatal(err)
	}
	cat.Refresh(ctx)
	if e := cat.Sources()[0].Error; !strings.Contains(e, `credential "lab" is not stored`) {
		t.Errorf("missing credential: %s", e)
	}
	if _, err := cat.PullAuth(host + "/team/notebook:1.0"); err == nil || !strings.Contains(err.Error(), "not stored") {
		t.Errorf("PullAuth without the credential: %v", err)
	}
}

// TestLogin checks credentials against the real registry's /v2/.
func TestLogin(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, "bob", "right-"+randHex(4))
	cat, err := New(Options{Credentials: openStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// A loopback host without a scheme: https fails, http answers.
	err = cat.Login(ctx, reg.Host(), "bob", "nope")
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), `refused the credentials of user "bob"`) {
		t.Errorf("Login(wrong password) = %v", err)
	}
	ac := reg.AuthConfig()
	if err := cat.Login(ctx, reg.Host(), ac.Username, ac.Password); err != nil {
		t.Errorf("Login(right password) = %v", err)
	}
	if err := cat.Login(ctx, "http://"+reg.Host(), ac.Username, ac.Password); err != nil {
		t.Errorf("Login(URL) = %v", err)
	}
	// Nothing listening: a clear error that is not an auth error.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.Listener.Addr().String()
	ln.Close()
	err = cat.Login(ctx, addr, "bob", "x")
	if err == nil || errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Login(closed port) = %v", err)
	}
}

// bearerGateway fronts a real registry with the Docker token protocol:
// requests without a valid token get a Bearer challenge naming the token
// service, which issues tokens for Basic credentials; requests with one
// are passed to the registry with the registry's own credentials.
type bearerGateway struct {
	srv        *httptest.Server
	user, pass string
	mu         sync.Mutex
	tokens     map[string]string // token → scope
	scopes     []string
	blobs      int // blob (config) requests passed to the registry
}

func newBearerGateway(t *testing.T, reg *registrytest.Registry, user, pass string) *bearerGateway {
	g := &bearerGateway{user: user, pass: pass, tokens: map[string]string{}}
	target, _ := url.Parse("http://" + reg.Host())
	proxy := httputil.NewSingleHostReverseProxy(target)
	ac := reg.AuthConfig()
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != g.user || p != g.pass {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			if r.URL.Query().Get("service") != "gateway" {
				http.Error(w, "bad service", http.StatusBadRequest)
				return
			}
			tok := randHex(16)
			scope := r.URL.Query().Get("scope")
			g.mu.Lock()
			g.tokens[tok] = scope
			g.scopes = append(g.scopes, scope)
			g.mu.Unlock()
			_, _ = fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, tok)
			return
		}
		scope := ""
		switch {
		case r.URL.Path == "/v2/":
		case r.URL.Path == "/v2/_catalog":
			scope = "registry:catalog:*"
		default:
			rest := strings.TrimPrefix(r.URL.Path, "/v2/")
			for _, sep := range []string{"/tags/", "/manifests/", "/blobs/"} {
				if i := strings.LastIndex(rest, sep); i >= 0 {
					scope = "repository:" + rest[:i] + ":pull"
					break
				}
			}
		}
		g.mu.Lock()
		granted, ok := g.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		g.mu.Unlock()
		if !ok || (scope != "" && granted != scope) {
			ch := fmt.Sprintf(`Bearer realm="%s/token",service="gateway"`, g.srv.URL)
			if scope != "" {
				ch += fmt.Sprintf(`,scope="%s"`, scope)
			}
			w.Header().Set("WWW-Authenticate", ch)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			g.mu.Lock()
			g.blobs++
			g.mu.Unlock()
		}
		r.SetBasicAuth(ac.Username, ac.Password)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func TestRegistrySourceBearerToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	gwPass := "gw-" + randHex(6)
	gw := newBearerGateway(t, f.reg, "carol", gwPass)
	host := strings.TrimPrefix(gw.srv.URL, "http://")
	st := openStore(t)
	if err := st.PutRegistry(store.RegistryCredential{Name: "gw", Server: host, Username: "carol", Password: gwPass}); err != nil {
		t.Fatal(err)
	}
	cat, err := New(Options{
		Credentials: st,
		Registries:  []config.CatalogRegistry{{Name: "gw", URL: gw.srv.URL, Credential: "gw"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	cat.Refresh(ctx)
	if src := cat.Sources()[0]; src.Error != "" || src.Images != 4 {
		t.Fatalf("source: %+v", src)
	}
	got := cat.List(ctx, client.TypeCarta)
	if len(got) != 1 || got[0].ID != host+"/multi:1" || got[0].Digest != f.multi {
		t.Errorf("List(carta) = %+v", got)
	}
	gw.mu.Lock()
	scopes := strings.Join(gw.scopes, " ")
	gw.mu.Unlock()
	for _, s := range []string{"registry:catalog:*", "repository:team/notebook:pull", "repository:deep/sub/app:pull"} {
		if !strings.Contains(scopes, s) {
			t.Errorf("no token asked for scope %s (asked: %s)", s, scopes)
		}
	}

	// Image configs are read once: a second listing reads none.
	gw.mu.Lock()
	blobs := gw.blobs
	gw.mu.Unlock()
	cat.Refresh(ctx)
	gw.mu.Lock()
	again := gw.blobs - blobs
	gw.mu.Unlock()
	if blobs == 0 || again != 0 {
		t.Errorf("config reads: %d on the first listing, %d on the second (want some, then none)", blobs, again)
	}

	// The login check speaks the token protocol too.
	if err := cat.Login(ctx, host, "carol", gwPass); err != nil {
		t.Errorf("Login = %v", err)
	}
	err = cat.Login(ctx, host, "carol", "wrong")
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), `refused the credentials of user "carol"`) ||
		!strings.Contains(err.Error(), "authentication required") {
		t.Errorf("Login(wrong) = %v", err)
	}

	// A wrong stored password: the listing stays, the error shows.
	if err := st.PutRegistry(store.RegistryCredential{Name: "gw", Server: host, Username: "carol", Password: "wrong"}); err != nil {
		t.Fatal(err)
	}
	cat.Refresh(ctx)
	if src := cat.Sources()[0]; !strings.Contains(src.Error, "refused the credentials") || src.Images != 4 {
		t.Errorf("after a wrong password: %+v", src)
	}
}
