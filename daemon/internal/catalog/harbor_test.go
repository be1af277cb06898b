package catalog

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// fakeHarbor serves the three Harbor v2.0 endpoints the catalog reads, with
// Harbor's shapes: Basic authentication (401 with an errors body), page and
// page_size (at most 100) with X-Total-Count and Link headers,
// repositories named "project/repo" whose path form encodes a slash twice
// (a%252Fb), and artifacts carrying tags, labels (only with
// with_label=true) and extra_attrs.
type fakeHarbor struct {
	srv        *httptest.Server
	user, pass string
	projects   []string
	repos      map[string][]string         // project → repository names "project/..."
	artifacts  map[string][]harborArtifact // repository name → artifacts
	broken     map[string]bool             // repository names whose artifacts answer 500
	mu         sync.Mutex
	requests   []string
}

func writeHarborError(w http.ResponseWriter, code int, c, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]string{"code": c, "message": msg}}})
}

// page writes items[page-1 of size] with Harbor's paging headers.
func harborPage[T any](w http.ResponseWriter, r *http.Request, items []T) {
	q := r.URL.Query()
	page, size := 1, 10
	if v := q.Get("page"); v != "" {
		page, _ = strconv.Atoi(v)
	}
	if v := q.Get("page_size"); v != "" {
		size, _ = strconv.Atoi(v)
	}
	if page < 1 || size < 1 || size > 100 {
		writeHarborError(w, http.StatusBadRequest, "BAD_REQUEST", "invalid page or page_size")
		return
	}
	start := min((page-1)*size, len(items))
	end := min(start+size, len(items))
	w.Header().Set("X-Total-Count", strconv.Itoa(len(items)))
	var links []string
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		return fmt.Sprintf(`<%s?%s>; rel="%s"`, r.URL.EscapedPath(), q.Encode(), rel)
	}
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if end < len(items) {
		links = append(links, link(page+1, "next"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, " , "))
	}
	w.Header().Set("Content-Type", "application/json")
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func newFakeHarbor(t *testing.T, user, pass string) *fakeHarbor {
	h := &fakeHarbor{user: user, pass: pass, repos: map[string][]string{}, artifacts: map[string][]harborArtifact{}, broken: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2.0/projects", func(w http.ResponseWriter, r *http.Request) {
		var ps []harborProject
		for i, p := range h.projects {
			ps = append(ps, harborProject{ProjectID: int64(i + 1), Name: p})
		}
		harborPage(w, r, ps)
	})
	mux.HandleFunc("GET /api/v2.0/projects/{project}/repositories", func(w http.ResponseWriter, r *http.Request) {
		p := r.PathValue("project")
		names, ok := h.repos[p]
		if !ok {
			writeHarborError(w, http.StatusNotFound, "NOT_FOUND", "project "+p+" not found")
			return
		}
		var rs []harborRepository
		for i, n := range names {
			rs = append(rs, harborRepository{ID: int64(i + 1), Name: n})
		}
		harborPage(w, r, rs)
	})
	mux.HandleFunc("GET /api/v2.0/projects/{project}/repositories/{repo}/artifacts", func(w http.ResponseWriter, r *http.Request) {
		// Go's mux decodes %25 once: a%252Fb arrives as a%2Fb, and Harbor
		// decodes that once more.
		rel, err := url.PathUnescape(r.PathValue("repo"))
		if err != nil || strings.Contains(r.PathValue("repo"), "/") {
			writeHarborError(w, http.StatusBadRequest, "BAD_REQUEST", "bad repository name")
			return
		}
		name := r.PathValue("project") + "/" + rel
		if h.broken[name] {
			writeHarborError(w, http.StatusInternalServerError, "UNKNOWN", "database is down")
			return
		}
		arts, ok := h.artifacts[name]
		if !ok {
			writeHarborError(w, http.StatusNotFound, "NOT_FOUND", "repository "+name+" not found")
			return
		}
		if r.URL.Query().Get("with_label") != "true" {
			stripped := make([]harborArtifact, len(arts))
			copy(stripped, arts)
			for i := range stripped {
				stripped[i].Labels = nil
			}
			arts = stripped
		}
		harborPage(w, r, arts)
	})
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock() // the test may change the data between requests
		defer h.mu.Unlock()
		h.requests = append(h.requests, r.URL.RequestURI())
		if u, p, ok := r.BasicAuth(); !ok || u != h.user || p != h.pass {
			writeHarborError(w, http.StatusUnauthorized, "UNAUTHORIZED", "unauthorized")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// artifact builds a Harbor artifact with tags and label names.
func artifact(digest string, typ string, tags []string, labels []string, configTypes string) harborArtifact {
	var a harborArtifact
	a.Type = typ
	a.Digest = digest
	for _, t := range tags {
		a.Tags = append(a.Tags, struct {
			Name string `json:"name"`
		}{t})
	}
	for i, l := range labels {
		a.Labels = append(a.Labels, struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		}{int64(i + 1), l})
	}
	if configTypes != "" {
		a.ExtraAttrs.Config.Labels = map[string]string{TypesLabel: configTypes}
	}
	return a
}

func TestHarborSource(t *testing.T) {
	t.Parallel()
	pass := "harbor-" + randHex(6)
	h := newFakeHarbor(t, "robot$berth", pass)
	h.projects = []string{"skaha", "astro", "private"}
	h.repos["skaha"] = []string{"skaha/terminal", "skaha/tools/ds9"}
	h.repos["astro"] = []string{}
	h.repos["private"] = []string{"private/secret"}
	// 150 artifacts in one repository: two pages.
	var many []harborArtifact
	for i := range 150 {
		many = append(many, artifact(fmt.Sprintf("sha256:%064d", i), "IMAGE", []string{fmt.Sprintf("1.%d", i)}, []string{"desktop-app"}, ""))
	}
	many = append(many,
		artifact("sha256:"+strings.Repeat("a", 64), "IMAGE", []string{"latest", "2.0"}, []string{"desktop-app", "headless", "deprecated"}, ""),
		artifact("sha256:"+strings.Repeat("b", 64), "IMAGE", nil, []string{"desktop-app"}, ""),          // untagged
		artifact("sha256:"+strings.Repeat("c", 64), "IMAGE", []string{"old"}, []string{"obsolete"}, ""), // no type
		artifact("sha256:"+strings.Repeat("d", 64), "CHART", []string{"chart"}, []string{"notebook"}, ""),
	)
	h.artifacts["skaha/terminal"] = many
	h.artifacts["skaha/tools/ds9"] = []harborArtifact{
		artifact("sha256:"+strings.Repeat("e", 64), "IMAGE", []string{"8.2"}, nil, "desktop-app,notebook"),
	}
	h.artifacts["private/secret"] = []harborArtifact{
		artifact("sha256:"+strings.Repeat("f", 64), "IMAGE", []string{"1"}, []string{"notebook"}, ""),
	}

	st := openStore(t)
	host := strings.TrimPrefix(h.srv.URL, "http://")
	if err := st.PutRegistry(store.RegistryCredential{Name: "canfar", Server: host, Username: h.user, Password: h.pass}); err != nil {
		t.Fatal(err)
	}
	newCat := func(projects []string) *Catalog {
		cat, err := New(Options{
			Credentials: st,
			Registries:  []config.CatalogRegistry{{Name: "canfar", URL: h.srv.URL, Kind: "harbor", Credential: "canfar", Projects: projects}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return cat
	}
	ctx := t.Context()

	cat := newCat(nil)
	cat.Refresh(ctx)
	if src := cat.Sources()[0]; src.Error != "" || src.Kind != "harbor" || src.Name != "harbor:canfar" {
		t.Fatalf("source: %+v", src)
	}
	got := cat.List(ctx, "")
	if len(got) != 150+2+1+1 {
		t.Fatalf("List: %d images, want 154", len(got))
	}
	byID := map[string]client.Image{}
	for _, im := range got {
		byID[im.ID] = im
	}
	check := func(id string, types []string, digest string) {
		t.Helper()
		im, ok := byID[id]
		if !ok {
			t.Errorf("%s not listed", id)
			return
		}
		if !reflect.DeepEqual(im.Types, types) || im.Digest != digest || im.Source != "harbor:canfar" {
			t.Errorf("%s = %+v, want types %v digest %s", id, im, types, digest)
		}
	}
	check(host+"/skaha/terminal:1.0", []string{"desktop-app"}, fmt.Sprintf("sha256:%064d", 0))
	check(host+"/skaha/terminal:1.149", []string{"desktop-app"}, fmt.Sprintf("sha256:%064d", 149))
	check(host+"/skaha/terminal:latest", []string{"desktop-app", "headless"}, "sha256:"+strings.Repeat("a", 64))
	check(host+"/skaha/terminal:2.0", []string{"desktop-app", "headless"}, "sha256:"+strings.Repeat("a", 64))
	check(host+"/skaha/tools/ds9:8.2", []string{"notebook", "desktop-app"}, "sha256:"+strings.Repeat("e", 64))
	check(host+"/private/secret:1", []string{"notebook"}, "sha256:"+strings.Repeat("f", 64))
	for _, id := range []string{host + "/skaha/terminal:old", host + "/skaha/terminal:chart"} {
		if _, ok := byID[id]; ok {
			t.Errorf("%s is listed", id)
		}
	}
	h.mu.Lock()
	reqs := strings.Join(h.requests, "\n")
	h.mu.Unlock()
	for _, want := range []string{
		"/api/v2.0/projects/skaha/repositories/tools%252Fds9/artifacts?",
		"with_label=true",
		"page=2&page_size=100",
	} {
		if !strings.Contains(reqs, want) {
			t.Errorf("no request with %q:\n%s", want, reqs)
		}
	}

	// One repository failing: the others are listed anew, its last
	// entries are kept, and the error says what failed.
	h.mu.Lock()
	h.broken["skaha/tools/ds9"] = true
	h.artifacts["private/secret"] = append(h.artifacts["private/secret"],
		artifact("sha256:"+strings.Repeat("9", 64), "IMAGE", []string{"2"}, []string{"notebook"}, ""))
	h.mu.Unlock()
	cat.Refresh(ctx)
	src := cat.Sources()[0]
	if !strings.Contains(src.Error, "1 repository or tag could not be read") || !strings.Contains(src.Error, "skaha/tools/ds9") ||
		!strings.Contains(src.Error, "database is down") || src.Images != 155 {
		t.Errorf("with a broken repository: %+v", src)
	}
	ids := map[string]bool{}
	for _, im := range cat.List(ctx, "") {
		ids[im.ID] = true
	}
	if !ids[host+"/skaha/tools/ds9:8.2"] || !ids[host+"/private/secret:2"] {
		t.Errorf("with a broken repository: kept ds9 %v, new secret:2 %v", ids[host+"/skaha/tools/ds9:8.2"], ids[host+"/private/secret:2"])
	}
	h.mu.Lock()
	delete(h.broken, "skaha/tools/ds9")
	h.mu.Unlock()
	cat.Refresh(ctx)
	if src := cat.Sources()[0]; src.Error != "" || src.Images != 155 {
		t.Errorf("after the repository recovered: %+v", src)
	}

	// Projects limit the listing.
	cat2 := newCat([]string{"private"})
	cat2.Refresh(ctx)
	if got := cat2.List(ctx, ""); len(got) != 2 || got[0].ID != host+"/private/secret:1" {
		t.Errorf("List(projects=private) = %+v", got)
	}

	// A wrong password keeps the listing and names the refusal.
	if err := st.PutRegistry(store.RegistryCredential{Name: "canfar", Server: host, Username: h.user, Password: "wrong"}); err != nil {
		t.Fatal(err)
	}
	cat.Refresh(ctx)
	src = cat.Sources()[0]
	if !strings.Contains(src.Error, `refused the credentials of user "robot$berth"`) || src.Images != 155 {
		t.Errorf("after a wrong password: %+v", src)
	}
	if strings.Contains(src.Error, pass) {
		t.Errorf("the error shows the password: %s", src.Error)
	}
	// A project that vanished is a clear error too.
	if err := st.PutRegistry(store.RegistryCredential{Name: "canfar", Server: host, Username: h.user, Password: h.pass}); err != nil {
		t.Fatal(err)
	}
	cat3 := newCat([]string{"gone"})
	cat3.Refresh(ctx)
	if e := cat3.Sources()[0].Error; !strings.Contains(e, "project gone") || !strings.Contains(e, "404") {
		t.Errorf("missing project: %s", e)
	}
}
