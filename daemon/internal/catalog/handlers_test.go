package catalog

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/caller"
	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/engine/registrytest"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// serve mounts the catalog's routes the way the api package does (each
// pattern under each prefix) with the caller a test header names: "admin"
// or a plain user.
func serve(t *testing.T, cat *Catalog) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	rs := cat.Routes()
	for pattern, h := range rs.Handlers {
		method, rest, _ := strings.Cut(pattern, " ")
		for _, p := range rs.Prefixes {
			mux.Handle(method+" "+p+rest, h)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := caller.Caller{UID: 1000, GID: 1000, Name: "user"}
		if r.Header.Get("X-Test-Caller") == "admin" {
			who = caller.Caller{UID: 0, GID: 0, Name: "root", Admin: true}
		}
		mux.ServeHTTP(w, r.WithContext(caller.With(r.Context(), who)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	code   int
	header http.Header
	body   string
}

func call(t *testing.T, srv *httptest.Server, method, path, who, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if who != "" {
		req.Header.Set("X-Test-Caller", who)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(a.body), &v); err != nil {
		t.Fatalf("decode %q: %v", a.body, err)
	}
	return v
}

func TestHandlers(t *testing.T) {
	t.Parallel()
	const user = "dave"
	pass := "pw-" + randHex(6)
	reg := registrytest.Start(t, user, pass)
	p := &pusher{t: t, base: "http://" + reg.Host(), user: user, pass: pass}
	p.image("skaha/terminal", "1.9", map[string]string{TypesLabel: "desktop-app"})
	p.image("skaha/terminal", "1.10", map[string]string{TypesLabel: "desktop-app"})
	p.image("skaha/notebook", "2", map[string]string{TypesLabel: "notebook,headless"})

	st := openStore(t)
	profiles := []client.Profile{
		{Name: "gpu-notebook", Image: reg.Host() + "/skaha/notebook:2", Type: client.TypeNotebook},
		{Name: "batch", Image: "example.org/x/batch:1", Type: client.TypeHeadless},
	}
	cat, err := New(Options{
		Credentials: st,
		Registries: []config.CatalogRegistry{
			{Name: "lab", URL: "http://" + reg.Host(), Credential: "lab"},
			{Name: "mirror", URL: "https://images.example.org", Kind: "harbor"},
		},
		Profiles: func() []client.Profile { return profiles },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, cat)

	// No credential yet: the source says so, GET image says so in a header.
	cat.Refresh(t.Context())
	a := call(t, srv, "GET", "/skaha/v1/image", "", "")
	if a.code != 200 || !strings.Contains(a.header.Get(ErrorsHeader), `registry:lab: credential "lab" is not stored`) {
		t.Errorf("GET image without a credential: %d %q %s", a.code, a.header.Get(ErrorsHeader), a.body)
	}
	if imgs := decode[[]client.Image](t, a); len(imgs) != 2 || imgs[0].Source != "profile" {
		t.Errorf("only the profiles are listed yet: %+v", imgs)
	}

	// Only admins change credentials.
	body := `{"server":"` + reg.Host() + `","username":"dave","password":"` + pass + `"}`
	if a := call(t, srv, "PUT", "/api/v1/registries/lab", "user", body); a.code != 403 || !strings.Contains(a.body, "administrators") {
		t.Errorf("PUT as a user: %d %s", a.code, a.body)
	}
	if a := call(t, srv, "DELETE", "/api/v1/registries/lab", "user", ""); a.code != 403 {
		t.Errorf("DELETE as a user: %d %s", a.code, a.body)
	}
	// Bad input is named.
	for _, tc := range []struct{ path, body, want string }{
		{"/api/v1/registries/lab", `{"server":"","username":"","password":""}`, "server is required"},
		{"/api/v1/registries/lab", `{"server":"x","username":"u"}`, "password is required"},
		{"/api/v1/registries/lab", `{"server":"x","user":"u"}`, `unknown field \"user\"`},
		{"/api/v1/registries/lab", `{"name":"other","server":"x","username":"u","password":"p"}`, `differs from \"lab\"`},
		{"/api/v1/registries/bad%20name", body, "may only hold"},
		{"/api/v1/registries/lab", `{"server":"ftp://x","username":"u","password":"p"}`, "not a host[:port] or an http(s) URL"},
	} {
		a := call(t, srv, "PUT", tc.path, "admin", tc.body)
		if a.code != 400 || !strings.Contains(a.body, tc.want) {
			t.Errorf("PUT %s %s: %d %s, want 400 with %q", tc.path, tc.body, a.code, a.body, tc.want)
		}
	}
	// A wrong password is refused by the registry and nothing is stored.
	wrongBody := `{"server":"` + reg.Host() + `","username":"dave","password":"wrong-password"}`
	a = call(t, srv, "PUT", "/api/v1/registries/lab", "admin", wrongBody)
	if a.code != 400 || !strings.Contains(a.body, `refused the credentials of user \"dave\"`) || strings.Contains(a.body, "wrong-password") {
		t.Errorf("PUT with a wrong password: %d %s", a.code, a.body)
	}
	if _, ok, _ := st.Registry("lab"); ok {
		t.Error("a refused credential was stored")
	}
	t.Logf("wrong password: %s", strings.TrimSpace(a.body))

	// The right one is stored, shown without its password.
	a = call(t, srv, "PUT", "/skaha/v1/registries/lab", "admin", body)
	if a.code != 200 || decode[client.Registry](t, a) != (client.Registry{Name: "lab", Server: reg.Host(), Username: user}) {
		t.Fatalf("PUT: %d %s", a.code, a.body)
	}
	if c, ok, _ := st.Registry("lab"); !ok || c.Password != pass {
		t.Errorf("stored credential %v %v", c, ok)
	}
	a = call(t, srv, "GET", "/api/v1/registries", "user", "")
	if a.code != 200 || strings.Contains(a.body, pass) || strings.Contains(a.body, "password") {
		t.Errorf("GET registries: %d %s", a.code, a.body)
	}
	if got := decode[[]client.Registry](t, a); !reflect.DeepEqual(got, []client.Registry{{Name: "lab", Server: reg.Host(), Username: user}}) {
		t.Errorf("GET registries = %+v", got)
	}

	// Now the registry is listed.
	cat.Refresh(t.Context())
	a = call(t, srv, "GET", "/api/v1/image?type=desktop-app", "user", "")
	imgs := decode[[]client.Image](t, a)
	if a.code != 200 || len(imgs) != 2 || imgs[0].ID != reg.Host()+"/skaha/terminal:1.10" {
		t.Errorf("GET image?type=desktop-app: %d %+v", a.code, imgs)
	}
	a = call(t, srv, "GET", "/api/v1/image?type=notebook", "user", "")
	imgs = decode[[]client.Image](t, a)
	if len(imgs) != 2 || imgs[0].Source != "registry:lab" || imgs[1].Profile != "gpu-notebook" || imgs[1].Digest != imgs[0].Digest {
		t.Errorf("GET image?type=notebook = %+v", imgs)
	}
	if e := a.header.Get(ErrorsHeader); !strings.Contains(e, "harbor:mirror") || strings.Contains(e, "registry:lab") {
		t.Errorf("errors header = %q, want only the unreachable harbor", e)
	}
	// An unknown type is a 400 naming the known ones.
	for _, path := range []string{"/skaha/v1/image?type=desktop", "/api/v1/menu?type=bogus"} {
		a := call(t, srv, "GET", path, "", "")
		if a.code != 400 || !strings.Contains(a.body, "unknown session type") || !strings.Contains(a.body, "desktop-app") {
			t.Errorf("GET %s: %d %s", path, a.code, a.body)
		}
	}

	// repository lists the configured hosts.
	a = call(t, srv, "GET", "/skaha/v1/repository", "", "")
	if got := decode[[]string](t, a); !reflect.DeepEqual(got, []string{reg.Host(), "images.example.org"}) {
		t.Errorf("GET repository = %v", got)
	}

	// menu builds the tree.
	a = call(t, srv, "GET", "/api/v1/menu?type=desktop-app", "", "")
	menu := decode[[]client.MenuProject](t, a)
	if len(menu) != 1 || menu[0].Name != "skaha" || len(menu[0].Items) != 2 ||
		menu[0].Items[0].Label != "terminal:1.9" || menu[0].Items[1].Label != "terminal:1.10" {
		t.Errorf("GET menu = %+v", menu)
	}
	a = call(t, srv, "GET", "/api/v1/menu", "", "")
	if menu := decode[[]client.MenuProject](t, a); len(menu) != 2 || menu[1].Name != "Profiles" || len(menu[1].Items) != 2 {
		t.Errorf("GET menu (all) = %+v", menu)
	}

	// catalog/sources.
	a = call(t, srv, "GET", "/api/v1/catalog/sources", "", "")
	srcs := decode[[]SourceStatus](t, a)
	if len(srcs) != 2 || srcs[0].Name != "registry:lab" || srcs[0].Images != 3 || srcs[0].Error != "" ||
		srcs[1].Name != "harbor:mirror" || srcs[1].Error == "" || srcs[1].Refreshed != "" || srcs[1].Checked == "" {
		t.Errorf("GET catalog/sources = %+v", srcs)
	}

	// DELETE.
	if a := call(t, srv, "DELETE", "/api/v1/registries/lab", "admin", ""); a.code != 204 {
		t.Errorf("DELETE: %d %s", a.code, a.body)
	}
	if a := call(t, srv, "DELETE", "/api/v1/registries/lab", "admin", ""); a.code != 404 || !strings.Contains(a.body, "no registry credential lab") {
		t.Errorf("DELETE again: %d %s", a.code, a.body)
	}
	if _, ok, _ := st.Registry("lab"); ok {
		t.Error("credential still stored")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without credentials succeeded")
	}
	st := openStore(t)
	for _, r := range []config.CatalogRegistry{
		{Name: "x", URL: "registry.example.com"},
		{Name: "x", URL: "https://r.example", Kind: "quay"},
	} {
		if _, err := New(Options{Credentials: st, Registries: []config.CatalogRegistry{r}}); err == nil {
			t.Errorf("New(%+v) succeeded", r)
		}
	}
}

// TestPullAuthByHost falls back to a stored credential for the image's
// host when no configured registry names one.
func TestPullAuthByHost(t *testing.T) {
	st := openStore(t)
	if err := st.PutRegistry(store.RegistryCredential{Name: "ghcr", Server: "https://ghcr.io", Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	cat, err := New(Options{Credentials: st})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := cat.PullAuth("ghcr.io/org/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := auth.For("ghcr.io/org/app:1"); !ok || c.Username != "u" || c.Password != "p" {
		t.Errorf("PullAuth(ghcr) = %v", auth)
	}
}
