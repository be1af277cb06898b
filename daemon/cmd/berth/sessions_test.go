package main

import (
	"context"
	"encoding/json"
	"fmt"

	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/api"
	"github.com/berth-edge/berth/daemon/internal/events"
	"github.com/berth-edge/berth/daemon/internal/httpjson"
)

// sessionsFeature is a small in-memory stand-in of the sessions feature,
// served by the real API server: the CLI's wire format is what is tested.
// The end-to-end test in daemon/uie2e drives a real berthd.
type sessionsFeature struct {
	fakeBackend
	hub events.Hub
	// wg owns the goroutines that play a launch's pull and start.
	wg sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*client.Session
	forms    []url.Values
	regs     map[string]client.RegistryCredential
	n        int
}

func (f *sessionsFeature) Events() *events.Hub { return &f.hub }

func (f *sessionsFeature) routes() api.Routes {
	h := map[string]http.Handler{
		"GET /session": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			out := []client.Session{}
			for _, s := range f.sessions {
				if t := r.URL.Query().Get("type"); t == "" || t == s.Type {
					out = append(out, *s)
				}
			}
			httpjson.Write(w, 200, out)
		}),
		"GET /session/{id}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			sp, ok := f.sessions[r.PathValue("id")]
			var s client.Session
			if ok {
				s = *sp
			}
			f.mu.Unlock()
			if !ok {
				httpjson.Error(w, 404, "no session "+r.PathValue("id"))
				return
			}
			switch r.URL.Query().Get("view") {
			case "logs":
				httpjson.Text(w, 200, "hello\nworld\n")
			case "events":
				httpjson.Text(w, 200, "<none>")
			default:
				httpjson.Write(w, 200, s)
			}
		}),
		"POST /session": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				httpjson.Error(w, 400, err.Error())
				return
			}
			if r.PostForm.Get("image") == "bad" {
				httpjson.Error(w, 400, "image bad is not in the catalog")
				return
			}
			f.mu.Lock()
			f.n++
			id := fmt.Sprintf("s%07d", f.n)
			f.forms = append(f.forms, r.PostForm)
			s := &client.Session{ID: id, Name: r.PostForm.Get("name"), Type: r.PostForm.Get("type"), Image: r.PostForm.Get("image"),
				Status: client.StatusPending, StartTime: time.Now().UTC().Format(time.RFC3339)}
			f.sessions[id] = s
			img := s.Image
			f.mu.Unlock()
			httpjson.Text(w, 200, id+"\n")
			// Pull, then run, as events.
			f.wg.Go(func() {
				time.Sleep(50 * time.Millisecond)
				f.hub.Publish(events.TypePull, client.PullProgress{Session: id, Image: img, Current: 50, Total: 100, Layers: 2, LayersDone: 1})
				f.hub.Publish(events.TypePull, client.PullProgress{Session: id, Image: img, Current: 100, Total: 100, Layers: 2, LayersDone: 2, Done: true})
				f.mu.Lock()
				status := client.StatusRunning
				if s.Image == "crashes" {
					status = client.StatusFailed
					s.Message = "exited"
				}
				s.Status = status
				if s.Type == client.TypeNotebook {
					s.ConnectURL = "http://127.0.0.1:1/session/notebook/" + id + "/?token=t0k"
				}
				f.mu.Unlock()
				f.hub.Publish(events.TypeSession, client.SessionEvent{ID: id, Status: status})
			})
		}),
		"POST /session/{id}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("action") != "renew" {
				httpjson.Error(w, 400, "unknown action")
				return
			}
			w.WriteHeader(200)
		}),
		"DELETE /session/{id}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if _, ok := f.sessions[r.PathValue("id")]; !ok {
				httpjson.Error(w, 404, "no session "+r.PathValue("id"))
				return
			}
			delete(f.sessions, r.PathValue("id"))
			w.WriteHeader(200)
		}),
		"GET /image": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpjson.Write(w, 200, []client.Image{{ID: "images.example/astro/ds9:8.5", Types: []string{"desktop-app"}, Source: "local"}})
		}),
		"GET /menu": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpjson.Write(w, 200, []client.MenuProject{{Name: "astro", Items: []client.MenuItem{
				{Label: "ds9:8.5", Image: "images.example/astro/ds9:8.5", Types: []string{"desktop-app"}},
				{Label: "topcat:4.9", Image: "images.example/astro/topcat:4.9", Types: []string{"desktop-app"}}}}})
		}),
		"GET /context": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpjson.Write(w, 200, client.Context{Cores: client.ResourceOptions{Default: 2, Options: []int{1, 2, 4}},
				MemoryGB: client.ResourceOptions{Default: 4, Options: []int{2, 4, 8}}, MaxInteractiveSessions: 3})
		}),
		"GET /profiles": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpjson.Write(w, 200, []client.Profile{{Name: "gpu-nb", Description: "Notebook with the GPU", Image: "img:2", Type: "notebook", Cores: 4, RAMGB: 16}})
		}),
		"GET /registries": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			out := []client.Registry{}
			for n, c := range f.regs {
				out = append(out, client.Registry{Name: n, Server: c.Server, Username: c.Username})
			}
			httpjson.Write(w, 200, out)
		}),
		"PUT /registries/{name}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var c client.RegistryCredential
			if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
				httpjson.Error(w, 400, err.Error())
				return
			}
			f.mu.Lock()
			f.regs[r.PathValue("name")] = c
			f.mu.Unlock()
			w.WriteHeader(200)
		}),
	}
	return api.Routes{Prefixes: []string{"/api/v1"}, Handlers: h}
}

func startSessions(t *testing.T) (*sessionsFeature, string) {
	t.Helper()
	f := &sessionsFeature{sessions: map[string]*client.Session{}, regs: map[string]client.RegistryCredential{}}
	sock := filepath.Join(t.TempDir(), "berthd.sock")
	s, err := api.New(f, api.Options{Socket: sock, Routes: []api.Routes{f.routes()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Shutdown(context.Background())
		f.wg.Wait()
	})
	return f, sock
}

func TestCreateWaitsAndShowsProgress(t *testing.T) {
	f, sock := startSessions(t)
	out, err := run(t, nil, "--socket", sock, "create", "notebook", "img:1", "--cores", "2", "--env", "A=1", "--env", "B=2")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	for _, want := range []string{"s0000001\n", "Pulling img:1: 1/2 layers, 50B of 100B", "Pulled img:1 (100B, 2 layers)",
		"Running: http://127.0.0.1:1/session/notebook/s0000001/?token=t0k"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	form := f.forms[0]
	if form["name"][0] != "notebook-1" || form["cores"][0] != "2" || strings.Join(form["env"], ",") != "A=1,B=2" {
		t.Errorf("form = %v", form)
	}

	// The next default name skips the one in use; a command follows --.
	if out, err := run(t, nil, "--socket", sock, "create", "notebook", "img:1", "-d", "--", "run.sh", "-x", "1"); err != nil || out != "s0000002\n" {
		t.Fatalf("create -d: %q, %v", out, err)
	}
	if form := f.forms[1]; form["name"][0] != "notebook-2" || form["cmd"][0] != "run.sh" || form["args"][0] != "-x 1" {
		t.Errorf("form = %v", form)
	}

	// Failures carry berthd's message.
	if _, err := run(t, nil, "--socket", sock, "create", "headless", "bad"); err == nil || err.Error() != "image bad is not in the catalog" {
		t.Errorf("bad image: %v", err)
	}
	if _, err := run(t, nil, "--socket", sock, "create", "headless", "crashes"); err == nil || !strings.Contains(err.Error(), "the session failed: exited; see `berth logs s0000003`") {
		t.Errorf("failing session: %v", err)
	}
	if _, err := run(t, nil, "--socket", sock, "create", "desktop", "img"); err == nil || !strings.Contains(err.Error(), `unknown session type "desktop"`) {
		t.Errorf("bad type: %v", err)
	}
	if _, err := run(t, nil, "--socket", sock, "create", "headless", "img", "--env", "NOEQUALS"); err == nil || !strings.Contains(err.Error(), "KEY=VALUE") {
		t.Errorf("bad env: %v", err)
	}
	if _, err := run(t, map[string]string{}, "--socket", sock, "create", "desktop-app", "img"); err == nil || !strings.Contains(err.Error(), "$DISPLAY is not set") {
		t.Errorf("desktop-app without a display: %v", err)
	}
}

func TestSessionCommands(t *testing.T) {
	_, sock := startSessions(t)
	if _, err := run(t, nil, "--socket", sock, "create", "notebook", "img:1"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, nil, "--socket", sock, "ps")
	if err != nil || !strings.Contains(out, "s0000001") || !strings.Contains(out, "notebook-1") || !strings.HasPrefix(out, "ID ") {
		t.Errorf("ps: %v\n%s", err, out)
	}
	out, err = run(t, nil, "--socket", sock, "ps", "--json")
	var ss []client.Session
	if err != nil || json.Unmarshal([]byte(out), &ss) != nil || len(ss) != 1 {
		t.Errorf("ps --json: %v\n%s", err, out)
	}
	out, err = run(t, nil, "--socket", sock, "info", "s0000001")
	if err != nil || !strings.Contains(out, "Status:") || !strings.Contains(out, "Running") || !strings.Contains(out, "?token=t0k") {
		t.Errorf("info: %v\n%s", err, out)
	}
	if out, err := run(t, nil, "--socket", sock, "logs", "s0000001"); err != nil || out != "hello\nworld\n" {
		t.Errorf("logs: %q, %v", out, err)
	}
	if out, err := run(t, nil, "--socket", sock, "events", "s0000001"); err != nil || out != "<none>\n" {
		t.Errorf("events: %q, %v", out, err)
	}
	if out, err := run(t, nil, "--socket", sock, "renew", "s0000001"); err != nil || !strings.Contains(out, "Renewed s0000001") {
		t.Errorf("renew: %q, %v", out, err)
	}
	if out, err := run(t, nil, "--socket", sock, "open", "s0000001"); err != nil || out != "http://127.0.0.1:1/session/notebook/s0000001/?token=t0k\n" {
		t.Errorf("open: %q, %v", out, err)
	}
	if out, err := run(t, nil, "--socket", sock, "delete", "s0000001", "nope"); err == nil || !strings.Contains(out, "Deleted s0000001") || err.Error() != "nope: no session nope" {
		t.Errorf("delete: %q, %v", out, err)
	}
	if out, err := run(t, nil, "--socket", sock, "ps"); err != nil || strings.TrimSpace(out) != emptySessions {
		t.Errorf("empty ps: %q, %v", out, err)
	}
}

func TestCatalogCommands(t *testing.T) {
	f, sock := startSessions(t)
	out, err := run(t, nil, "--socket", sock, "images", "--tree")
	if err != nil || out != "astro\n├── ds9:8.5  (desktop-app)  images.example/astro/ds9:8.5\n└── topcat:4.9  (desktop-app)  images.example/astro/topcat:4.9\n" {
		t.Errorf("images --tree: %v\n%s", err, out)
	}
	if out, err := run(t, nil, "--socket", sock, "images"); err != nil || !strings.Contains(out, "images.example/astro/ds9:8.5  desktop-app  local") {
		t.Errorf("images: %v\n%s", err, out)
	}
	if out, err := run(t, nil, "--socket", sock, "context"); err != nil || !strings.Contains(out, "1 2 4") || !strings.Contains(out, "(default 4)") {
		t.Errorf("context: %v\n%s", err, out)
	}
	cmd := newRootCmd(func(string) string { return "" }, "test")
	var buf strings.Builder
	cmd.SetOut(&buf)
	cmd.SetIn(strings.NewReader("s3cret\n"))
	cmd.SetArgs([]string{"--socket", sock, "registry", "add", "harbor", "--server", "h.example", "--username", "u", "--password-stdin"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := f.regs["harbor"]; c.Password != "s3cret" || c.Server != "h.example" {
		t.Errorf("stored %+v", c)
	}
	if out, err := run(t, nil, "--socket", sock, "registry", "list"); err != nil || !strings.Contains(out, "harbor  h.example  u") || strings.Contains(out, "s3cret") {
		t.Errorf("registry list: %v\n%s", err, out)
	}
	if _, err := run(t, nil, "--socket", sock, "registry", "add", "x", "--server", "h"); err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Errorf("add without stdin: %v", err)
	}
	// Completion offers types, then image ids.
	out, _ = run(t, nil, "--socket", sock, "__complete", "create", "")
	if !strings.Contains(out, "desktop-app") {
		t.Errorf("type completion:\n%s", out)
	}
	out, _ = run(t, nil, "--socket", sock, "__complete", "create", "desktop-app", "")
	if !strings.Contains(out, "images.example/astro/ds9:8.5") {
		t.Errorf("image completion:\n%s", out)
	}
}

func TestRunProfile(t *testing.T) {
	f, sock := startSessions(t)
	out, err := run(t, nil, "--socket", sock, "profiles")
	if err != nil || !strings.Contains(out, "gpu-nb") || !strings.Contains(out, "16G") || !strings.Contains(out, "Notebook with the GPU") {
		t.Errorf("profiles: %v\n%s", err, out)
	}
	if out, err := run(t, nil, "--socket", sock, "run", "--profile", "gpu-nb", "-d"); err != nil || out != "s0000001\n" {
		t.Fatalf("run: %q, %v", out, err)
	}
	if form := f.forms[0]; form.Get("profile") != "gpu-nb" || form.Get("name") != "gpu-nb-1" || form.Get("image") != "" {
		t.Errorf("form = %v", form)
	}
	if _, err := run(t, nil, "--socket", sock, "run"); err == nil || !strings.Contains(err.Error(), "--profile") {
		t.Errorf("run without a profile: %v", err)
	}
}

func TestNewLogs(t *testing.T) {
	tests := []struct{ prev, cur, want string }{
		{"", "a\nb\n", "a\nb\n"},
		{"a\nb\n", "a\nb\nc\n", "c\n"},
		{"a\nb\n", "a\nb\n", ""},
		{"a\nb\nc\n", "b\nc\nd\n", "d\n"}, // a bounded tail moved on
		{"a\nb\n", "x\n", "x\n"},          // restarted
	}
	for _, tt := range tests {
		if got := newLogs(tt.prev, tt.cur); got != tt.want {
			t.Errorf("newLogs(%q, %q) = %q, want %q", tt.prev, tt.cur, got, tt.want)
		}
	}
}

func TestNextNameAndBase(t *testing.T) {
	ss := []client.Session{{Name: "notebook-1"}, {Name: "notebook-3"}}
	if got := nextName("notebook", ss); got != "notebook-2" {
		t.Errorf("nextName = %q", got)
	}
	for in, want := range map[string]string{"desktop-app": "desktop-app", "gpu notebook!": "gpu-notebook", "---": "session"} {
		if got := nameBase(in); got != want {
			t.Errorf("nameBase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPullBar(t *testing.T) {
	tests := []struct {
		p    client.PullProgress
		want string
	}{
		{client.PullProgress{Image: "img", Layers: 3}, "Pulling img  [----------]   0%  ?  0/3 layers"},
		{client.PullProgress{Image: "img", Current: 512, Total: 1024, Layers: 3, LayersDone: 1}, "Pulling img  [#####-----]  50%  512B/1.0KiB  1/3 layers"},
		{client.PullProgress{Image: "img", Current: 1024, Total: 1024, Layers: 3, LayersDone: 3, Done: true}, "Pulled img  [##########] 100%  1.0KiB/1.0KiB  3/3 layers"},
		{client.PullProgress{Image: "img\x1b[2J", Error: "denied"}, "Pulling img [2J failed: denied"},
	}
	for _, tt := range tests {
		if got := pullBar(tt.p, 10); got != tt.want {
			t.Errorf("pullBar(%+v) =\n%q, want\n%q", tt.p, got, tt.want)
		}
	}
}
