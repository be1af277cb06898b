package sessions

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/store"
)

func baseSpec(typ string) Spec {
	return Spec{
		ID: "abcd1234", Token: "0123456789abcdef0123456789abcdef",
		Req: LaunchRequest{Name: "s1", Image: "images.example/p/img:1", Type: typ},
		UID: 1001, GID: 1001, Groups: []int{1001, 27, 100}, UserName: "alice", Hostname: "box",
		Home: "/home/alice", HomeVolume: "berth-home-1001", Cores: 2, RAMGB: 4, RequestCores: 2,
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		spec    func() Spec
		wantErr string
		check   func(t *testing.T, a *apps.App, s *apps.Service)
	}{
		{
			name: "notebook",
			spec: func() Spec { return baseSpec(client.TypeNotebook) },
			check: func(t *testing.T, a *apps.App, s *apps.Service) {
				if a.Kind != apps.KindSession || a.Owner != "1001" || a.ID != "abcd1234" || a.Name != "s1" {
					t.Errorf("app = %+v", a)
				}
				want := []apps.Port{{Target: 8888, Protocol: "tcp", HostIP: "127.0.0.1"}}
				if !slices.Equal(s.Ports, want) {
					t.Errorf("ports = %+v, want %+v", s.Ports, want)
				}
				if !slices.Equal(s.Entrypoint, []string{"jupyter", "lab"}) {
					t.Errorf("entrypoint = %q", s.Entrypoint)
				}
				for _, arg := range []string{"--ServerApp.base_url=/session/notebook/abcd1234/", "--ServerApp.port=8888",
					"--ServerApp.ip=0.0.0.0", "--ServerApp.token=0123456789abcdef0123456789abcdef", "--no-browser"} {
					if !slices.Contains(s.Command, arg) {
						t.Errorf("command %q lacks %q", s.Command, arg)
					}
				}
				if s.Env["JUPYTER_TOKEN"] != "0123456789abcdef0123456789abcdef" {
					t.Errorf("JUPYTER_TOKEN = %q", s.Env["JUPYTER_TOKEN"])
				}
			},
		},
		{
			name: "common security and identity",
			spec: func() Spec { return baseSpec(client.TypeContributed) },
			check: func(t *testing.T, a *apps.App, s *apps.Service) {
				if s.User != "1001:1001" {
					t.Errorf("user = %q", s.User)
				}
				if !slices.Equal(s.GroupAdd, []string{"27", "100"}) {
					t.Errorf("group-add = %q", s.GroupAdd)
				}
				if !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Equal(s.SecurityOpt, []string{"no-new-privileges:true"}) {
					t.Errorf("cap-drop %q security-opt %q", s.CapDrop, s.SecurityOpt)
				}
				if s.Restart.Condition != apps.RestartNone {
					t.Errorf("restart = %+v", s.Restart)
				}
				if s.CPUs != 2 || s.MemoryBytes != 4<<30 {
					t.Errorf("cpus %v memory %d", s.CPUs, s.MemoryBytes)
				}
				for k, v := range map[string]string{"HOME": "/home/alice", "skaha_hostname": "box", "skaha_username": "alice",
					"skaha_sessionid": "abcd1234", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"} {
					if s.Env[k] != v {
						t.Errorf("env %s = %q, want %q", k, s.Env[k], v)
					}
				}
				if _, ok := s.Env["JUPYTER_TOKEN"]; ok {
					t.Error("a contributed session got the Jupyter token")
				}
				if !reflect.DeepEqual(s.Mounts, []apps.Mount{{Type: apps.MountVolume, Source: "berth-home-1001", Target: "/home/alice"}}) {
					t.Errorf("mounts = %+v", s.Mounts)
				}
				if s.Ports[0].Target != 5000 || s.Ports[0].HostIP != "127.0.0.1" || s.Ports[0].Published != 0 {
					t.Errorf("ports = %+v", s.Ports)
				}
				if len(s.Entrypoint) != 0 || len(s.Command) != 0 {
					t.Errorf("contributed must keep the image's entrypoint: %q %q", s.Entrypoint, s.Command)
				}
				l := a.Labels(s)
				if l[LabelType] != "contributed" || l[LabelName] != "s1" || l[apps.LabelOwner] != "1001" {
					t.Errorf("labels = %v", l)
				}
			},
		},
		{
			name: "carta",
			spec: func() Spec { return baseSpec(client.TypeCarta) },
			check: func(t *testing.T, _ *apps.App, s *apps.Service) {
				if s.Ports[0].Target != 6901 || s.Env["CARTA_PORT"] != "6901" || s.Env["SKAHA_SESSION_URL_PATH"] != "/session/carta/abcd1234/" {
					t.Errorf("ports %+v env %v", s.Ports, s.Env)
				}
			},
		},
		{
			name: "headless with cmd, args and env",
			spec: func() Spec {
				s := baseSpec(client.TypeHeadless)
				s.Req.Cmd, s.Req.Args, s.Req.Env = "/bin/echo", "hello  world", []string{"A=1", "B=x=y"}
				return s
			},
			check: func(t *testing.T, _ *apps.App, s *apps.Service) {
				if !slices.Equal(s.Entrypoint, []string{"/bin/echo"}) || !slices.Equal(s.Command, []string{"hello", "world"}) {
					t.Errorf("entrypoint %q command %q", s.Entrypoint, s.Command)
				}
				if s.Env["A"] != "1" || s.Env["B"] != "x=y" || len(s.Ports) != 0 {
					t.Errorf("env %v ports %v", s.Env, s.Ports)
				}
			},
		},
		{
			name: "headless keeps the entrypoint",
			spec: func() Spec { return baseSpec(client.TypeHeadless) },
			check: func(t *testing.T, _ *apps.App, s *apps.Service) {
				if s.Entrypoint != nil || s.Command != nil {
					t.Errorf("entrypoint %q command %q", s.Entrypoint, s.Command)
				}
			},
		},
		{
			name: "profile: retry limit, storages, command, env",
			spec: func() Spec {
				s := baseSpec(client.TypeHeadless)
				s.Req.Profile = "p"
				s.RetryLimit = 3
				s.Command = []string{"/run", "x"}
				s.ProfileEnv = map[string]string{"P": "1", "HOME": "/ignored"}
				s.Storages = []client.ProfileStorage{{Name: "data", Target: "/data"}, {Name: "/srv/ref", Target: "/ref", ReadOnly: true}}
				return s
			},
			check: func(t *testing.T, _ *apps.App, s *apps.Service) {
				if s.Restart != (apps.RestartPolicy{Condition: apps.RestartOnFailure, MaxAttempts: 3}) {
					t.Errorf("restart = %+v", s.Restart)
				}
				if !slices.Equal(s.Entrypoint, []string{"/run"}) || !slices.Equal(s.Command, []string{"x"}) {
					t.Errorf("entrypoint %q command %q", s.Entrypoint, s.Command)
				}
				if s.Env["P"] != "1" || s.Env["HOME"] != "/home/alice" || s.Labels[LabelProfile] != "p" {
					t.Errorf("env %v labels %v", s.Env, s.Labels)
				}
				want := []apps.Mount{
					{Type: apps.MountVolume, Source: "berth-home-1001", Target: "/home/alice"},
					{Type: apps.MountVolume, Source: "data", Target: "/data"},
					{Type: apps.MountBind, Source: "/srv/ref", Target: "/ref", ReadOnly: true},
				}
				if !reflect.DeepEqual(s.Mounts, want) {
					t.Errorf("mounts = %+v", s.Mounts)
				}
			},
		},
		{
			name: "desktop-app",
			spec: func() Spec {
				s := baseSpec(client.TypeDesktopApp)
				s.Req.Display = ":3"
				s.XauthFile = "/var/lib/berth/sessions/abcd1234/Xauthority"
				return s
			},
			check: func(t *testing.T, _ *apps.App, s *apps.Service) {
				if len(s.Entrypoint) != 5 || s.Entrypoint[0] != "/bin/sh" || s.Entrypoint[1] != "-c" || s.Entrypoint[4] != "s1" {
					t.Fatalf("entrypoint = %q", s.Entrypoint)
				}
				for _, part := range []string{"/skaha/init.sh", "/skaha/startup.sh", "exec xterm"} {
					if !strings.Contains(s.Entrypoint[2], part) {
						t.Errorf("script lacks %q", part)
					}
				}
				if s.Env["DISPLAY"] != ":3" || s.Env["XAUTHORITY"] != XauthorityPath || len(s.Ports) != 0 {
					t.Errorf("env %v ports %v", s.Env, s.Ports)
				}
				want := []apps.Mount{
					{Type: apps.MountVolume, Source: "berth-home-1001", Target: "/home/alice"},
					{Type: apps.MountBind, Source: "/tmp/.X11-unix", Target: "/tmp/.X11-unix"},
					{Type: apps.MountBind, Source: "/var/lib/berth/sessions/abcd1234/Xauthority", Target: XauthorityPath, ReadOnly: true},
				}
				if !reflect.DeepEqual(s.Mounts, want) {
					t.Errorf("mounts = %+v", s.Mounts)
				}
			},
		},
		{name: "desktop-app without display", spec: func() Spec { return baseSpec(client.TypeDesktopApp) }, wantErr: "X display"},
		{name: "root", spec: func() Spec { s := baseSpec(client.TypeHeadless); s.UID = 0; return s }, wantErr: "root"},
		{name: "bad name", spec: func() Spec { s := baseSpec(client.TypeHeadless); s.Req.Name = "a b"; return s }, wantErr: "bad session name"},
		{name: "unknown type", spec: func() Spec { return baseSpec("desktop") }, wantErr: "unknown session type"},
		{name: "no token", spec: func() Spec { s := baseSpec(client.TypeHeadless); s.Token = ""; return s }, wantErr: "token"},
		{name: "bad env", spec: func() Spec {
			s := baseSpec(client.TypeHeadless)
			s.Req.Env = []string{"novalue"}
			return s
		}, wantErr: "KEY=VALUE"},
		{name: "relative home", spec: func() Spec { s := baseSpec(client.TypeHeadless); s.Home = "home"; return s }, wantErr: "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Build(tt.spec())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Services) != 1 || a.Services[0].Name != ServiceName {
				t.Fatalf("services = %+v", a.Services)
			}
			tt.check(t, a, &a.Services[0])
		})
	}
}

func TestNewContext(t *testing.T) {
	tests := []struct {
		name                          string
		cpus, mem, maxCores, maxMem   int
		wantCores, wantMem            []int
		coreDefault, memDefault, memL int
	}{
		{"big host", 4, 23, 0, 0, []int{1, 2, 3, 4}, []int{1, 2, 4, 6, 8, 10, 12, 14, 16, 20}, 2, 8, 20},
		{"capped", 16, 200, 3, 9, []int{1, 2, 3}, []int{1, 2, 4, 6, 8}, 2, 4, 8},
		{"tiny host", 1, 1, 0, 0, []int{1}, []int{1}, 1, 1, 1},
		{"large", 2, 130, 0, 0, []int{1, 2}, []int{1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128}, 2, 8, 128},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewContext(tt.cpus, tt.mem, tt.maxCores, tt.maxMem, 5)
			if !slices.Equal(c.Cores.Options, tt.wantCores) || !slices.Equal(c.MemoryGB.Options, tt.wantMem) {
				t.Errorf("cores %v memory %v", c.Cores.Options, c.MemoryGB.Options)
			}
			if c.Cores.Default != tt.coreDefault || c.MemoryGB.Default != tt.memDefault || c.MemoryGB.DefaultLimit != tt.memL {
				t.Errorf("defaults: cores %d memory %d limit %d", c.Cores.Default, c.MemoryGB.Default, c.MemoryGB.DefaultLimit)
			}
			if c.GPUs.Options == nil || len(c.GPUs.Options) != 0 || c.MaxInteractiveSessions != 5 {
				t.Errorf("gpus %v max %d", c.GPUs.Options, c.MaxInteractiveSessions)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	zero, one := 0, 1
	tests := []struct {
		phase     string
		c         *apps.Container
		want, msg string
		exit      *int
	}{
		{store.PhasePending, nil, client.StatusPending, "pulling", nil},
		{store.PhaseFailed, nil, client.StatusFailed, "pulling", nil},
		{store.PhaseTerminating, &apps.Container{State: "running"}, client.StatusTerminating, "", nil},
		{store.PhaseStarted, nil, client.StatusFailed, "the session's container is gone", nil},
		{store.PhaseStarted, &apps.Container{State: "running"}, client.StatusRunning, "", nil},
		{store.PhaseStarting, &apps.Container{State: "running"}, client.StatusPending, "pulling", nil},
		{store.PhaseStarted, &apps.Container{State: "created"}, client.StatusPending, "starting", nil},
		{store.PhaseStarted, &apps.Container{State: "exited", Status: "Exited (0) 3 seconds ago"}, client.StatusCompleted, "", &zero},
		{store.PhaseStarted, &apps.Container{State: "exited", Status: "Exited (1) at 2026-01-01"}, client.StatusFailed, "exited with code 1", &one},
	}
	for _, tt := range tests {
		st, msg, exit := Status(&store.SessionMeta{Phase: tt.phase, Message: "pulling"}, tt.c)
		if st != tt.want || msg != tt.msg || (exit == nil) != (tt.exit == nil) || (exit != nil && *exit != *tt.exit) {
			t.Errorf("Status(%s, %+v) = %s %q %v, want %s %q %v", tt.phase, tt.c, st, msg, exit, tt.want, tt.msg, tt.exit)
		}
	}
}

func TestEventsTable(t *testing.T) {
	if got := EventsTable(nil); got != "<none>\n" {
		t.Errorf("empty = %q", got)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := EventsTable([]store.SessionEvent{{Type: "Normal", Reason: "Pulling", Message: "Pulling image x", First: at, Last: at}})
	want := "TYPE     REASON    MESSAGE           FIRST-TIME             LAST-TIME\n" +
		"Normal   Pulling   Pulling image x   2026-01-02T03:04:05Z   2026-01-02T03:04:05Z\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestIDsAndTokens(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if len(id) != 8 || strings.Trim(id, idAlphabet) != "" || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	if tok := newToken(); len(tok) != 32 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("bad token %q", tok)
	}
}

func TestConnectPath(t *testing.T) {
	for typ, want := range map[string]string{
		client.TypeNotebook:    "/session/notebook/id1/lab?token=tok",
		client.TypeContributed: "/session/contributed/id1/?token=tok",
		client.TypeCarta:       "/session/carta/id1/?token=tok",
		client.TypeHeadless:    "",
		client.TypeDesktopApp:  "",
	} {
		if got := ConnectPath(typ, "id1", "tok"); got != want {
			t.Errorf("ConnectPath(%s) = %q, want %q", typ, got, want)
		}
	}
}

func TestXauthorityEntry(t *testing.T) {
	got := XauthorityEntry("3", []byte{1, 2})
	want := []byte{0xff, 0xff, 0, 0, 0, 1, '3', 0, 18}
	want = append(want, "MIT-MAGIC-COOKIE-1"...)
	want = append(want, 0, 2, 1, 2)
	if !slices.Equal(got, want) {
		t.Errorf("got % x\nwant % x", got, want)
	}
}

func TestParseLaunch(t *testing.T) {
	tests := []struct {
		name, ctype, body, query string
		want                     LaunchRequest
		wantErr                  string
	}{
		{name: "form", ctype: "application/x-www-form-urlencoded",
			body: "name=a&image=i&type=headless&cores=2&ram=4&cmd=%2Fbin%2Fx&args=1+2&env=A%3D1&env=B%3D2",
			want: LaunchRequest{Name: "a", Image: "i", Type: "headless", Cores: 2, RAM: 4, Cmd: "/bin/x", Args: "1 2", Env: []string{"A=1", "B=2"}}},
		{name: "query", query: "?name=a&image=i&display=:1&xauth=ab", want: LaunchRequest{Name: "a", Image: "i", Display: ":1", Xauth: "ab"}},
		{name: "json", ctype: "application/json", body: `{"name":"a","image":"i","cores":2,"ram":"4","env":["A=1"],"profile":"p"}`,
			want: LaunchRequest{Name: "a", Image: "i", Cores: 2, RAM: 4, Env: []string{"A=1"}, Profile: "p"}},
		{name: "json fraction", ctype: "application/json", body: `{"cores":1.5}`, wantErr: "not an integer"},
		{name: "json unknown field", ctype: "application/json", body: `{"core":1}`, wantErr: "unknown field"},
		{name: "negative", ctype: "application/x-www-form-urlencoded", body: "ram=-1", wantErr: "ram \"-1\""},
		{name: "not a number", ctype: "application/x-www-form-urlencoded", body: "gpus=x", wantErr: "gpus \"x\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/session"+tt.query, strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			got, err := ParseLaunch(r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
