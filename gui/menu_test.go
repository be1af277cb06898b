package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-edge/berth/daemon/berthdtest"
	"github.com/berth-edge/berth/daemon/client"
)

// recorder is a menuActions that records what the menu asked for.
type recorder struct {
	mu       sync.Mutex
	launched []string // "image|type|profile"
	opened   []string
	calls    []string
}

func (r *recorder) launchItem(it client.MenuItem, typ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.launched = append(r.launched, it.Image+"|"+typ+"|"+it.Profile)
}
func (r *recorder) open(u string)  { r.mu.Lock(); r.opened = append(r.opened, u); r.mu.Unlock() }
func (r *recorder) refreshMenu()   { r.mu.Lock(); r.calls = append(r.calls, "refresh"); r.mu.Unlock() }
func (r *recorder) about()         { r.mu.Lock(); r.calls = append(r.calls, "about"); r.mu.Unlock() }
func (r *recorder) quit()          { r.mu.Lock(); r.calls = append(r.calls, "quit"); r.mu.Unlock() }
func (r *recorder) last() []string { r.mu.Lock(); defer r.mu.Unlock(); return slices.Clone(r.launched) }

var testCatalog = []client.MenuProject{
	{Name: "astro", Items: []client.MenuItem{
		{Label: "topcat:4.8", Image: "localhost/astro/topcat:4.8", Types: []string{"notebook", "desktop-app"}},
		{Label: "ds9:8.5", Image: "images.example/astro/ds9:8.5", Types: []string{"desktop-app"}},
	}},
	{Name: "skaha", Items: []client.MenuItem{
		{Label: "carta:4.1", Image: "images.example/skaha/carta:4.1", Types: []string{"carta"}},
		{Label: "gpu-lab:1", Image: "images.example/skaha/lab:1", Types: []string{"notebook"}, Profile: "gpu-lab"},
		{Label: "odd:1", Image: "images.example/skaha/odd:1"},
	}},
}

func TestBuildMenuLabels(t *testing.T) {
	nodes := buildMenu(menuData{
		Catalog: testCatalog,
		Sessions: []client.Session{
			{ID: "abcd1234", Name: "topcat-1a2b", Type: "notebook", Status: "Running", ConnectURL: "http://127.0.0.1:8484/session/notebook/abcd1234/lab?token=t"},
			{ID: "efgh5678", Name: "ds9-3c4d", Type: "desktop-app", Status: "Running"},
			{ID: "ijkl9012", Name: "carta-5e6f", Type: "carta", Status: "Pending", ConnectURL: "http://127.0.0.1:8484/session/carta/ijkl9012/?token=t"},
		},
		Apps: []client.App{
			{ID: "sess-abcd1234", Kind: "session", State: "running"},
			{ID: "nginx-demo", Name: "nginx demo", Kind: "component", State: "running", URLs: map[string]string{"http": "http://127.0.0.1:8080/"}},
			{ID: "multi", Kind: "application", State: "running", URLs: map[string]string{"web": "http://127.0.0.1:81/", "api": "http://127.0.0.1:82/"}},
			{ID: "quiet", Kind: "component", State: "stopped"},
		},
	}, &recorder{})
	got, _ := json.MarshalIndent(menuLabels(nodes), "", " ")
	want := `[
 {"label": "Berth", "items": [{"label": "Refresh menus"}, {"label": "-"}, {"label": "Quit"}]},
 {"label": "Astro Software", "items": [
  {"label": "astro", "items": [
   {"label": "topcat:4.8", "items": [{"label": "notebook"}, {"label": "desktop-app"}]},
   {"label": "ds9:8.5"}]},
  {"label": "skaha", "items": [
   {"label": "carta:4.1"},
   {"label": "gpu-lab:1"},
   {"label": "odd:1 (no session type)", "disabled": true}]}]},
 {"label": "Apps", "items": [
  {"label": "topcat-1a2b (notebook, Running)"},
  {"label": "ds9-3c4d (desktop-app, Running)", "disabled": true},
  {"label": "carta-5e6f (carta, Pending)", "disabled": true},
  {"label": "-"},
  {"label": "nginx demo (running)"},
  {"label": "multi (running)", "items": [{"label": "api"}, {"label": "web"}]},
  {"label": "quiet (stopped)", "disabled": true}]},
 {"label": "Help", "items": [{"label": "About Berth Desktop"}]}
]`
	var wantV, gotV any
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(got, &gotV)
	if !reflect.DeepEqual(gotV, wantV) {
		t.Errorf("menu labels:\n%s\nwant:\n%s", got, want)
	}
}

func TestBuildMenuStates(t *testing.T) {
	for _, c := range []struct {
		name           string
		d              menuData
		software, apps string
	}{
		{"loading", menuData{Loading: true}, "Loading…", "Loading…"},
		{"berthd down", menuData{CatalogErr: "berthd is not running: start it with systemctl start berthd", AppsErr: "berthd is not running: start it with systemctl start berthd"},
			"berthd is not running: start it with systemctl start berthd", "berthd is not running: start it with systemctl start berthd"},
		{"empty", menuData{}, "No software in the catalog", "No running apps"},
		{"long error", menuData{CatalogErr: strings.Repeat("x", 200)}, strings.Repeat("x", 89) + "…", "No running apps"},
	} {
		t.Run(c.name, func(t *testing.T) {
			nodes := buildMenu(c.d, &recorder{})
			sw, ap := findNode(nodes, menuSoftware), findNode(nodes, menuApps)
			if len(sw.Children) != 1 || sw.Children[0].Label != c.software || !sw.Children[0].Disabled {
				t.Errorf("Astro Software = %+v, want the disabled note %q", menuLabels(sw.Children), c.software)
			}
			if len(ap.Children) != 1 || ap.Children[0].Label != c.apps || !ap.Children[0].Disabled {
				t.Errorf("Apps = %+v, want the disabled note %q", menuLabels(ap.Children), c.apps)
			}
		})
	}
}

// TestMenuCallbacks: each entry does what its label says.
func TestMenuCallbacks(t *testing.T) {
	r := &recorder{}
	nodes := buildMenu(menuData{
		Catalog:  testCatalog,
		Sessions: []client.Session{{ID: "abcd1234", Name: "nb", Type: "notebook", Status: "Running", ConnectURL: "http://x/session/notebook/abcd1234/lab?token=t"}},
		Apps:     []client.App{{ID: "multi", Kind: "application", State: "running", URLs: map[string]string{"web": "http://127.0.0.1:81/", "api": "http://127.0.0.1:82/"}}},
	}, r)
	for _, c := range []struct {
		path []string
		want string
	}{
		{[]string{menuSoftware, "astro", "topcat:4.8", "notebook"}, "localhost/astro/topcat:4.8|notebook|"},
		{[]string{menuSoftware, "astro", "topcat:4.8", "desktop-app"}, "localhost/astro/topcat:4.8|desktop-app|"},
		{[]string{menuSoftware, "astro", "ds9:8.5"}, "images.example/astro/ds9:8.5|desktop-app|"},
		{[]string{menuSoftware, "skaha", "carta:4.1"}, "images.example/skaha/carta:4.1|carta|"},
		{[]string{menuSoftware, "skaha", "gpu-lab:1"}, "images.example/skaha/lab:1|notebook|gpu-lab"},
	} {
		n := findNode(nodes, c.path...)
		if n == nil || n.Action == nil {
			t.Errorf("%s: no action", strings.Join(c.path, " → "))
			continue
		}
		n.Action()
		if l := r.last(); len(l) == 0 || l[len(l)-1] != c.want {
			t.Errorf("%s launched %v, want %s", strings.Join(c.path, " → "), l, c.want)
		}
	}
	if n := findNode(nodes, menuSoftware, "skaha", "odd:1 (no session type)"); n == nil || n.Action != nil {
		t.Error("an image with no type must be a disabled entry")
	}
	findNode(nodes, menuApps, "nb (notebook, Running)").Action()
	findNode(nodes, menuApps, "multi (running)", "api").Action()
	if want := []string{"http://x/session/notebook/abcd1234/lab?token=t", "http://127.0.0.1:82/"}; !slices.Equal(r.opened, want) {
		t.Errorf("opened %v, want %v", r.opened, want)
	}
	findNode(nodes, menuBerth, "Refresh menus").Action()
	findNode(nodes, menuHelp, "About Berth Desktop").Action()
	findNode(nodes, menuBerth, "Quit").Action()
	if want := []string{"refresh", "about", "quit"}; !slices.Equal(r.calls, want) {
		t.Errorf("calls %v, want %v", r.calls, want)
	}
	// The Wails form of the same tree (the first menu bar) keeps labels,
	// submenus and callbacks.
	wm := toWailsMenu(nodes)
	if len(wm.Items) != 4 || wm.Items[1].Label != menuSoftware || wm.Items[1].SubMenu.Items[0].Label != "astro" {
		t.Fatalf("Wails menu: %+v", wm.Items)
	}
	ds9 := wm.Items[1].SubMenu.Items[0].SubMenu.Items[1]
	ds9.Click(nil)
	if l := r.last(); l[len(l)-1] != "images.example/astro/ds9:8.5|desktop-app|" {
		t.Errorf("the Wails item's callback launched %v", l)
	}
}

func TestSortedTypes(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{nil, []string{}},
		{[]string{"headless", "notebook"}, []string{"notebook", "headless"}},
		{[]string{"desktop-app", "carta", "contributed", "notebook"}, []string{"notebook", "contributed", "carta", "desktop-app"}},
		{[]string{"zeta", "notebook", "alpha", "notebook"}, []string{"notebook", "alpha", "zeta"}},
	} {
		if got := sortedTypes(c.in); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("sortedTypes(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestLaunchForm(t *testing.T) {
	img := client.MenuItem{Label: "topcat:4.8", Image: "localhost/astro/topcat:4.8", Types: []string{"desktop-app", "notebook"}}
	prof := client.MenuItem{Label: "gpu-lab:1", Image: "x/lab:1", Types: []string{"notebook"}, Profile: "gpu-lab"}
	for _, c := range []struct {
		name string
		item client.MenuItem
		typ  string
		want string
	}{
		{"desktop-app carries the display", img, "desktop-app", "display=%3A0&image=localhost%2Fastro%2Ftopcat%3A4.8&name=n&type=desktop-app&xauth=abcd"},
		{"notebook does not", img, "notebook", "image=localhost%2Fastro%2Ftopcat%3A4.8&name=n&type=notebook"},
		{"a profile is launched by name", prof, "notebook", "name=n&profile=gpu-lab&type=notebook"},
	} {
		if got := launchForm(c.item, c.typ, "n", ":0", "abcd").Encode(); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if got := launchForm(img, "desktop-app", "n", ":0", "").Encode(); strings.Contains(got, "xauth") {
		t.Errorf("no cookie must send no xauth: %s", got)
	}
}

func TestSessionName(t *testing.T) {
	for _, c := range []struct{ image, suffix, want string }{
		{"localhost/astro/topcat:4.8", "1a2b", "topcat-1a2b"},
		{"images.canfar.net/skaha/terminal:1.1.2", "", "terminal"},
		{"registry:5000/a/b/c_d.e@sha256:abc", "ff", "c-d-e-ff"},
		{"ubuntu", "00", "ubuntu-00"},
		{"host/___:1", "aa", "session-aa"},
		{"x/" + strings.Repeat("a", 60) + ":1", "bb", strings.Repeat("a", 40) + "-bb"},
	} {
		got := sessionName(c.image, c.suffix)
		if got != c.want || notName.MatchString(got) {
			t.Errorf("sessionName(%q, %q) = %q, want %q", c.image, c.suffix, got, c.want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := parseArgs(nil, env(nil))
	if err != nil || cfg.socket != client.DefaultSocket || cfg.hooks != (hooks{}) {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = parseArgs(nil, env(map[string]string{"BERTH_SOCKET": "/tmp/b.sock", "BERTH_DESKTOP_QUIT_AFTER": "2.5",
		"BERTH_DESKTOP_MENU_DUMP": "/tmp/m.json", "BERTH_DESKTOP_TIMING": "/tmp/t.json"}))
	if err != nil || cfg.socket != "/tmp/b.sock" || cfg.hooks.QuitAfter != 2500*1e6 || cfg.hooks.MenuDump != "/tmp/m.json" || cfg.hooks.Timing != "/tmp/t.json" {
		t.Errorf("from the environment: %+v, %v", cfg, err)
	}
	cfg, err = parseArgs([]string{"--socket", "/s"}, env(map[string]string{"BERTH_SOCKET": "/tmp/b.sock", "BERTH_DESKTOP_QUIT_AFTER": "1m"}))
	if err != nil || cfg.socket != "/s" || cfg.hooks.QuitAfter.Minutes() != 1 {
		t.Errorf("the flag wins: %+v, %v", cfg, err)
	}
	if cfg, err := parseArgs([]string{"--version"}, env(nil)); cfg != nil || err != nil {
		t.Errorf("--version: %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{{"extra"}, {"--nope"}} {
		if _, err := parseArgs(bad, env(nil)); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
	if _, err := parseArgs(nil, env(map[string]string{"BERTH_DESKTOP_QUIT_AFTER": "soon"})); err == nil || !strings.Contains(err.Error(), "BERTH_DESKTOP_QUIT_AFTER") {
		t.Errorf("a bad quit delay: %v", err)
	}
}

func TestWebkitEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WEBKIT_DISABLE_DMABUF_RENDERER", "")
	webkitEnv(discard(), dir)
	if v := getenv("WEBKIT_DISABLE_DMABUF_RENDERER"); v != "" {
		t.Errorf("no nvidia module: WEBKIT_DISABLE_DMABUF_RENDERER=%q", v)
	}
	mkdir(t, dir+"/nvidia")
	webkitEnv(discard(), dir)
	if v := getenv("WEBKIT_DISABLE_DMABUF_RENDERER"); v != "1" {
		t.Errorf("nvidia module loaded: WEBKIT_DISABLE_DMABUF_RENDERER=%q, want 1", v)
	}
}

func TestAboutText(t *testing.T) {
	got := aboutText("1.2.3", "1.2.3", "v2.15.0", "2.50.1", "/run/berth/berthd.sock")
	for _, w := range []string{"Berth Desktop 1.2.3", "berthd: 1.2.3 (/run/berth/berthd.sock)", "Wails: v2.15.0", "WebKitGTK: 2.50.1"} {
		if !strings.Contains(got, w) {
			t.Errorf("about text lacks %q:\n%s", w, got)
		}
	}
	if v := wailsVersion(); v != "v2.15.0" && v != "unknown" {
		t.Errorf("wailsVersion() = %q", v)
	}
}

// TestWindowIconIsTheAppIcon: the icon embedded for the window is the one
// the package installs (build/appicon.png, rendered from
// build/berth-desktop.svg).
func TestWindowIconIsTheAppIcon(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(berthdtest.RepoRoot(t), "build", "appicon.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, icon) {
		t.Fatal("gui/appicon.png differs from build/appicon.png: copy it after re-rendering the SVG (rsvg-convert -w 256 -h 256 build/berth-desktop.svg -o build/appicon.png)")
	}
	img, err := png.Decode(bytes.NewReader(icon))
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() != 256 || r.Dy() != 256 {
		t.Errorf("the icon is %dx%d; the package installs it as 256x256", r.Dx(), r.Dy())
	}
}
