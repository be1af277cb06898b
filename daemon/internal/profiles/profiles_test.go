package profiles

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/api"
)

const fullTOML = `
description = "JupyterLab with the astro stack"
image = "images.example.org/skaha/astroml:24.07"
type = "notebook"
command = ["jupyter", "lab"]
retry-limit = 3
pull-credential = "canfar"

[env]
OMP_NUM_THREADS = "4"
SURVEY = "euclid"

[resources]
cores = 2
ram = 8

[[storages]]
name = "projects"
target = "/arc/projects"
read-only = true

[[storages]]
name = "/srv/scratch"
target = "/scratch/"
optional = true
`

const fullYAML = `
description: JupyterLab with the astro stack
image: images.example.org/skaha/astroml:24.07
type: notebook
command: [jupyter, lab]
retry-limit: 3
pull-credential: canfar
env:
  OMP_NUM_THREADS: 4
  SURVEY: euclid
resources:
  cores: 2
  ram: 8
storages:
  - name: projects
    target: /arc/projects
    read-only: true
  - name: /srv/scratch
    target: /scratch/
    optional: true
`

var fullProfile = client.Profile{
	Name:        "astroml",
	Description: "JupyterLab with the astro stack",
	Image:       "images.example.org/skaha/astroml:24.07",
	Type:        client.TypeNotebook,
	Command:     []string{"jupyter", "lab"},
	Env:         map[string]string{"OMP_NUM_THREADS": "4", "SURVEY": "euclid"},
	Cores:       2,
	RAMGB:       8,
	Storages: []client.ProfileStorage{
		{Name: "projects", Target: "/arc/projects", ReadOnly: true},
		{Name: "/srv/scratch", Target: "/scratch", Optional: true},
	},
	RetryLimit:     3,
	PullCredential: "canfar",
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, dir string) *Set {
	t.Helper()
	s, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func TestFullFileBothFormats(t *testing.T) {
	for _, ext := range []string{".toml", ".yaml", ".yml"} {
		dir := t.TempDir()
		content := fullYAML
		if ext == ".toml" {
			content = fullTOML
		}
		write(t, dir, "astroml"+ext, content)
		s := load(t, dir)
		if errs := s.Errors(); len(errs) != 0 {
			t.Fatalf("%s: errors %v", ext, errs)
		}
		got, err := s.Profile("astroml")
		if err != nil {
			t.Fatalf("%s: %v", ext, err)
		}
		if !reflect.DeepEqual(got, fullProfile) {
			t.Errorf("%s:\n got %+v\nwant %+v", ext, got, fullProfile)
		}
		// The caller's copy is its own.
		got.Env["SURVEY"] = "changed"
		got.Storages[0].Name = "changed"
		again, _ := s.Profile("astroml")
		if again.Env["SURVEY"] != "euclid" || again.Storages[0].Name != "projects" {
			t.Errorf("%s: the set's copy changed: %+v", ext, again)
		}
	}
}

func TestStrictDecoding(t *testing.T) {
	cases := []struct {
		file, content string
		want          []string
	}{
		{"a.toml", "image = \"x\"\ntype = \"notebook\"\nimgae = \"y\"\n", []string{`unknown key "imgae"`, "line 3", "a.toml"}},
		{"b.toml", "image = \"x\"\ntype = \"notebook\"\n[resources]\ngpus = 1\n", []string{`unknown key "resources.gpus"`}},
		{"c.toml", "image = \"x\"\ntype = \"notebook\"\n[[storages]]\nname = \"v1\"\ntarget = \"/d\"\nsize = 3\n", []string{`"storages.size"`}},
		{"d.toml", "image = \"x\"\ntype = \"notebook\"\nname = \"d\"\n", []string{`unknown key "name"`}},
		{"e.toml", "image = \"x\"\ntype = \"notebook\"\n[resources]\ncores = \"two\"\n", []string{"resources.cores", "line 4"}},
		{"f.toml", "image = \"x\n", []string{"line 1"}},
		{"g.yaml", "image: x\ntype: notebook\nimgae: y\n", []string{`unknown key "imgae" (line 3)`, "g.yaml"}},
		{"h.yaml", "image: x\ntype: notebook\nresources:\n  gpus: 1\n", []string{`unknown key "gpus" (line 4)`}},
		{"i.yml", "image: x\ntype: notebook\nresources:\n  cores: two\n", []string{"line 4", "two"}},
		{"j.yaml", "image: x\ntype: notebook\n---\nimage: y\n", []string{"more than one YAML document"}},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		write(t, dir, tc.file, tc.content)
	}
	s := load(t, dir)
	errs := s.Errors()
	if len(errs) != len(cases) || len(s.List()) != 0 {
		t.Fatalf("%d errors, %d profiles: %v", len(errs), len(s.List()), errs)
	}
	for _, tc := range cases {
		var found error
		for _, err := range errs {
			var fe *FileError
			if errors.As(err, &fe) && filepath.Base(fe.Path) == tc.file {
				found = err
			}
		}
		if found == nil {
			t.Errorf("%s: no error", tc.file)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(found.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tc.file, found, w)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	ok := file{Image: "alpine:3", Type: client.TypeHeadless}
	with := func(f func(*file)) file { c := ok; f(&c); return c }
	cases := []struct {
		name string
		f    file
		want string // "" = valid
	}{
		{"min", ok, ""},
		{"every type", with(func(f *file) { f.Type = client.TypeDesktopApp }), ""},
		{"bad name", ok, "not a profile name"},
		{"no image", with(func(f *file) { f.Image = "" }), "image is required"},
		{"bad image", with(func(f *file) { f.Image = "Not A Ref" }), "not a valid image reference"},
		{"no type", with(func(f *file) { f.Type = "" }), "type is required (one of notebook, contributed"},
		{"bad type", with(func(f *file) { f.Type = "firefly" }), `type "firefly" is not a session type`},
		{"negative cores", with(func(f *file) { f.Resources.Cores = -1 }), "resources.cores is -1"},
		{"negative ram", with(func(f *file) { f.Resources.RAM = -2 }), "resources.ram is -2"},
		{"negative retry", with(func(f *file) { f.RetryLimit = -1 }), "retry-limit is -1"},
		{"empty command", with(func(f *file) { f.Command = []string{""} }), "command[0] is empty"},
		{"bad env key", with(func(f *file) { f.Env = map[string]string{"A=B": "x"} }), `env key "A=B"`},
		{"credential space", with(func(f *file) { f.PullCredential = "a b" }), "pull-credential"},
		{"storage no name", with(func(f *file) { f.Storages = []storage{{Target: "/d"}} }), "storages[0]: name is required"},
		{"storage bad volume", with(func(f *file) { f.Storages = []storage{{Name: "a b", Target: "/d"}} }), "neither a Docker volume name"},
		{"storage unclean path", with(func(f *file) { f.Storages = []storage{{Name: "/srv/../etc", Target: "/d"}} }), "not clean"},
		{"storage relative target", with(func(f *file) { f.Storages = []storage{{Name: "vol", Target: "data"}} }), `target "data" is not an absolute path`},
		{"storage no target", with(func(f *file) { f.Storages = []storage{{Name: "vol"}} }), "target is required"},
		{"storage root target", with(func(f *file) { f.Storages = []storage{{Name: "vol", Target: "/"}} }), "target cannot be /"},
		{"storage twice", with(func(f *file) { f.Storages = []storage{{Name: "v1", Target: "/d"}, {Name: "v2", Target: "/d/"}} }), "mounted twice"},
		{"storages ok", with(func(f *file) {
			f.Storages = []storage{{Name: "v1", Target: "/d", Optional: true}, {Name: "/srv/x", Target: "/e", ReadOnly: true}}
		}), ""},
	}
	for _, tc := range cases {
		name := "good-name-1"
		if tc.name == "bad name" {
			name = "Bad_Name"
		}
		p, err := validate(name, tc.f)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		case tc.want == "" && (p.Name != name || p.Image != tc.f.Image):
			t.Errorf("%s: profile %+v", tc.name, p)
		}
	}
}

func TestBadFileKeepsOthersAndLookups(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "good.toml", "image = \"alpine:3\"\ntype = \"headless\"\n")
	write(t, dir, "broken.yaml", "image: alpine:3\ntype: nonsense\n")
	write(t, dir, "twice.toml", "image = \"alpine:3\"\ntype = \"headless\"\n")
	write(t, dir, "twice.yml", "image: alpine:3\ntype: headless\n")
	write(t, dir, "README.md", "not a profile")
	write(t, dir, ".hidden.toml", "garbage = [")
	write(t, dir, "good.toml~", "garbage = [")
	if err := os.Mkdir(filepath.Join(dir, "sub.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := load(t, dir)
	if l := s.List(); len(l) != 1 || l[0].Name != "good" {
		t.Errorf("List = %+v, want only good", l)
	}
	if errs := s.Errors(); len(errs) != 3 {
		t.Errorf("Errors = %v, want broken and both twice files", errs)
	}
	if _, err := s.Profile("good"); err != nil {
		t.Error(err)
	}
	_, err := s.Profile("broken")
	if err == nil || !strings.Contains(err.Error(), "profile broken is invalid") || !strings.Contains(err.Error(), "broken.yaml") || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Profile(broken) = %v", err)
	}
	_, err = s.Profile("twice")
	if err == nil || !strings.Contains(err.Error(), "more than one file") {
		t.Errorf("Profile(twice) = %v", err)
	}
	_, err = s.Profile("nope")
	var nf *NotFoundError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &nf) || err.Error() != "no profile nope in "+dir {
		t.Errorf("Profile(nope) = %v", err)
	}
}

func TestReread(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "profiles.d")
	s := load(t, dir) // not there yet
	if len(s.List()) != 0 || len(s.Errors()) != 0 {
		t.Fatalf("missing dir: %v %v", s.List(), s.Errors())
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := write(t, dir, "a.toml", "image = \"alpine:3\"\ntype = \"headless\"\n")
	if l := s.List(); len(l) != 1 {
		t.Fatalf("after creating a.toml: %+v", l)
	}
	// Same size, new content: the modification time tells.
	if err := os.WriteFile(p, []byte("image = \"alpine:4\"\ntype = \"headless\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Profile("a"); err != nil || got.Image != "alpine:4" {
		t.Errorf("after edit: %+v %v", got, err)
	}
	write(t, dir, "b.yaml", "image: busybox\ntype: contributed\n")
	if l := s.List(); len(l) != 2 || l[0].Name != "a" || l[1].Name != "b" {
		t.Errorf("after adding b.yaml: %+v", l)
	}
	// Breaking a file makes it an error and leaves the other.
	write(t, dir, "a.toml", "image = \"alpine:4\"\ntype = \"headless\"\nextra = 1\n")
	if l, errs := s.List(), s.Errors(); len(l) != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), `unknown key "extra"`) {
		t.Errorf("after breaking a.toml: %+v %v", l, errs)
	}
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Profile("b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after removing b.yaml: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	f := write(t, t.TempDir(), "plain", "x")
	if _, err := Load(f); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("Load(a file) = %v", err)
	}
	if _, err := Load(""); err == nil {
		t.Error("Load(\"\") succeeded")
	}
	var s *Set
	if _, err := s.Profile("x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("nil set: %v", err)
	}
	if l := s.List(); l == nil || len(l) != 0 {
		t.Errorf("nil set List = %#v", l)
	}
}

func TestCheckStorages(t *testing.T) {
	host := t.TempDir()
	missingHost := filepath.Join(host, "nope")
	volumes := map[string]bool{"projects": true}
	exists := func(_ context.Context, name string) (bool, error) {
		if name == "flaky" {
			return false, errors.New("docker is down")
		}
		return volumes[name], nil
	}
	st := func(name string, optional bool) client.ProfileStorage {
		return client.ProfileStorage{Name: name, Target: "/mnt/" + strings.Trim(filepath.Base(name), "/"), Optional: optional}
	}
	cases := []struct {
		name     string
		storages []client.ProfileStorage
		want     []string // names mounted
		err      string
		missing  bool
	}{
		{"none", nil, []string{}, "", false},
		{"all there", []client.ProfileStorage{st("projects", false), st(host, false)}, []string{"projects", host}, "", false},
		{"optional missing skipped", []client.ProfileStorage{st("scratch", true), st(missingHost, true), st("projects", false)}, []string{"projects"}, "", false},
		{"required volume missing", []client.ProfileStorage{st("projects", false), st("scratch", false)}, nil, "storage scratch (Docker volume, for /mnt/scratch) does not exist", true},
		{"required path missing", []client.ProfileStorage{st(missingHost, false)}, nil, "storage " + missingHost + " (host path", true},
		{"lookup fails", []client.ProfileStorage{st("flaky", true)}, nil, "docker is down", false},
	}
	for _, tc := range cases {
		p := client.Profile{Name: "prof", Storages: tc.storages}
		mounts, err := CheckStorages(t.Context(), p, exists)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "profile prof") {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			if errors.Is(err, ErrMissingStorage) != tc.missing {
				t.Errorf("%s: errors.Is(ErrMissingStorage) = %v", tc.name, !tc.missing)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		names := []string{}
		for _, m := range mounts {
			names = append(names, m.Name)
		}
		if !reflect.DeepEqual(names, tc.want) {
			t.Errorf("%s: mounts %v, want %v", tc.name, names, tc.want)
		}
	}
}

type noBackend struct{}

func (noBackend) Status(context.Context) client.Status       { return client.Status{} }
func (noBackend) Apps(context.Context) ([]client.App, error) { return nil, nil }

func TestRoute(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "astroml.toml", fullTOML)
	write(t, dir, "bad.toml", "nonsense = 1\n")
	s := load(t, dir)
	srv, err := api.New(noBackend{}, api.Options{Socket: filepath.Join(t.TempDir(), "s.sock"), Routes: []api.Routes{s.Routes()}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/api/v1/profiles")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []client.Profile
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if !reflect.DeepEqual(got, []client.Profile{fullProfile}) {
		t.Errorf("GET /api/v1/profiles = %+v", got)
	}
	if resp, err := http.Get(hs.URL + "/skaha/v1/profiles"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("/skaha/v1/profiles: %d, want 404 (berth's own route)", resp.StatusCode)
		}
	}
}

// TestDocExamples loads the examples of docs/profiles.md, so the
// documentation cannot drift from the format.
func TestDocExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "profiles.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- file: ([a-z0-9.-]+) -->\\s*```[a-z]*\\n(.*?)```")
	ms := re.FindAllStringSubmatch(string(b), -1)
	if len(ms) < 2 {
		t.Fatalf("docs/profiles.md: %d examples found, want at least a TOML and a YAML one", len(ms))
	}
	dir := t.TempDir()
	for _, m := range ms {
		write(t, dir, m[1], m[2])
	}
	s := load(t, dir)
	if errs := s.Errors(); len(errs) != 0 {
		t.Fatalf("doc examples: %v", errs)
	}
	if len(s.List()) != len(ms) {
		t.Errorf("doc examples: %d profiles from %d files", len(s.List()), len(ms))
	}
}
