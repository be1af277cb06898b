package sessions

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/caller"
	"github.com/berth-edge/berth/daemon/internal/events"
	"github.com/berth-edge/berth/daemon/internal/store"
)

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

type fakeProfiles map[string]client.Profile

func (f fakeProfiles) Profile(name string) (client.Profile, error) {
	p, ok := f[name]
	if !ok {
		return p, fmt.Errorf("profile %s: %w", name, fs.ErrNotExist)
	}
	return p, nil
}

func TestContextEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	code, body := e.do(&alice, http.MethodGet, "/skaha/v1/context", nil)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	var c client.Context
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Cores.Options, []int{1, 2}) || !slices.Equal(c.MemoryGB.Options, []int{1, 2, 4, 6, 8}) ||
		c.MaxInteractiveSessions != 2 || c.GPUs.Options == nil {
		t.Errorf("context = %s", body)
	}
}

func TestLaunchErrors(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Profiles = fakeProfiles{"needs-data": {Name: "needs-data", Image: testImage, Type: client.TypeHeadless,
			Storages: []client.ProfileStorage{{Name: "berth-test-no-such-volume", Target: "/data"}}}}
	})
	img := e.image
	tests := []struct {
		name string
		c    *caller.Caller
		form url.Values
		code int
		msg  string
	}{
		{"bad name", &alice, form("name", "bad name!", "image", img, "type", "headless"), 400, "bad session name"},
		{"missing name", &alice, form("image", img), 400, "missing session name"},
		{"missing image", &alice, form("name", "x"), 400, "missing image"},
		{"unknown type", &alice, form("name", "x", "image", img, "type", "desktop"), 400, "unknown session type \"desktop\""},
		{"cores not in options", &alice, form("name", "x", "image", img, "cores", "64"), 400, "cores 64 is not one of the options [1 2]"},
		{"cores not a number", &alice, form("name", "x", "image", img, "cores", "two"), 400, "cores \"two\" is not"},
		{"ram not in options", &alice, form("name", "x", "image", img, "ram", "3"), 400, "ram 3 is not one of the memoryGB options"},
		{"gpus", &alice, form("name", "x", "image", img, "gpus", "1"), 400, "no GPU support"},
		{"env for a web session", &alice, form("name", "x", "image", img, "type", "contributed", "env", "A=1"), 400, "for headless sessions"},
		{"bad env", &alice, form("name", "x", "image", img, "env", "A"), 400, "not KEY=VALUE"},
		{"desktop-app without display", &alice, form("name", "x", "image", img, "type", "desktop-app"), 400, "needs the X display"},
		{"bad xauth", &alice, form("name", "x", "image", img, "type", "desktop-app", "display", ":1", "xauth", "zz"), 400, "xauth"},
		{"root", &root, form("name", "x", "image", img), 403, "never run as root"},
		{"no caller", nil, form("name", "x", "image", img), 403, "caller"},
		{"unknown profile", &alice, form("name", "x", "profile", "nope"), 404, "no profile \"nope\""},
		{"missing storage", &alice, form("name", "x", "profile", "needs-data"), 400, "required storage berth-test-no-such-volume (Docker volume, for /data) does not exist: create it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.do(tt.c, http.MethodPost, "/api/v1/session", tt.form)
			var ce client.Error
			_ = json.Unmarshal([]byte(body), &ce)
			if code != tt.code || !strings.Contains(ce.Message, tt.msg) {
				t.Errorf("%d %s, want %d with %q", code, body, tt.code, tt.msg)
			}
		})
	}
	recs, _ := e.st.Apps()
	if len(recs) != 0 {
		t.Errorf("failed launches left %d records", len(recs))
	}
}

func TestHeadless(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.hub.Subscribe(256)
	defer e.hub.Unsubscribe(sub)

	ok := e.launch(alice, form("name", "job-ok", "image", e.image, "env", "TESTAPP_EXIT=0", "env", "MARK=hello world", "cores", "1", "ram", "2"))
	bad := e.launch(alice, form("name", "job-bad", "image", e.image, "env", "TESTAPP_EXIT=3"))
	s := e.wait(alice, ok, client.StatusCompleted, client.StatusFailed)
	if s.Status != client.StatusCompleted || s.ExitCode == nil || *s.ExitCode != 0 {
		t.Fatalf("ok session = %+v", s)
	}
	if s.Type != client.TypeHeadless || s.UserID != "alice" || s.RunAsUID != "41001" || s.RunAsGID != "41001" ||
		s.RequestedCPUCores != "1" || s.RequestedRAM != "2G" || !s.IsFixedResources || s.ConnectURL != "" || s.Name != "job-ok" {
		t.Errorf("session = %+v", s)
	}
	start, _ := time.Parse(time.RFC3339, s.StartTime)
	exp, _ := time.Parse(time.RFC3339, s.ExpiryTime)
	if d := exp.Sub(start); d != 14*24*time.Hour {
		t.Errorf("headless expiry is %s after start, want 14 days", d)
	}
	code, logs := e.do(&alice, http.MethodGet, "/skaha/v1/session/"+ok+"?view=logs", nil)
	if code != 200 || !strings.Contains(logs, "MARK=hello world") || !strings.Contains(logs, "skaha_sessionid="+ok) ||
		!strings.Contains(logs, "HOME=/home/user") || !strings.Contains(logs, "OMP_NUM_THREADS=1") {
		t.Errorf("logs: %d %s", code, logs)
	}
	code, evs := e.do(&alice, http.MethodGet, "/skaha/v1/session/"+ok+"?view=events", nil)
	if code != 200 || !strings.HasPrefix(evs, "TYPE ") || !strings.Contains(evs, "Pulling") || !strings.Contains(evs, "Started") {
		t.Errorf("events: %d %s", code, evs)
	}
	s = e.wait(alice, bad, client.StatusCompleted, client.StatusFailed)
	if s.Status != client.StatusFailed || s.ExitCode == nil || *s.ExitCode != 3 || !strings.Contains(s.Message, "code 3") {
		t.Errorf("bad session = %+v", s)
	}

	// The container runs as alice, with nothing to escalate with.
	ins, err := e.cli.ContainerInspect(context.Background(), apps.ContainerName(ok, ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config.User != "41001:41001" || !slices.Equal([]string(ins.HostConfig.CapDrop), []string{"ALL"}) ||
		!slices.Contains(ins.HostConfig.SecurityOpt, "no-new-privileges:true") || !slices.Equal(ins.HostConfig.GroupAdd, []string{"41100"}) ||
		ins.HostConfig.NanoCPUs != 1e9 || ins.HostConfig.Memory != 2<<30 || ins.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("container: user %q capdrop %v secopt %v groups %v cpus %d mem %d restart %v", ins.Config.User,
			ins.HostConfig.CapDrop, ins.HostConfig.SecurityOpt, ins.HostConfig.GroupAdd, ins.HostConfig.NanoCPUs,
			ins.HostConfig.Memory, ins.HostConfig.RestartPolicy)
	}

	// Lists and filters.
	list := func(c caller.Caller, q string) []string {
		code, body := e.do(&c, http.MethodGet, "/skaha/v1/session"+q, nil)
		if code != 200 {
			t.Fatalf("list %s: %d %s", q, code, body)
		}
		var ss []client.Session
		_ = json.Unmarshal([]byte(body), &ss)
		var ids []string
		for _, s := range ss {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		return ids
	}
	both := []string{ok, bad}
	slices.Sort(both)
	if got := list(alice, ""); !slices.Equal(got, both) {
		t.Errorf("alice's list = %v, want %v", got, both)
	}
	if got := list(alice, "?status=Completed&type=headless"); !slices.Equal(got, []string{ok}) {
		t.Errorf("completed = %v", got)
	}
	if got := list(alice, "?type=notebook"); len(got) != 0 {
		t.Errorf("notebooks = %v", got)
	}
	if got := list(bob, ""); len(got) != 0 {
		t.Errorf("bob sees %v", got)
	}
	if got := list(bob, "?view=all"); len(got) != 0 {
		t.Errorf("bob's view=all shows %v", got)
	}
	if got := list(admin, "?view=all"); !slices.Equal(got, both) {
		t.Errorf("admin's view=all = %v", got)
	}
	if got := list(admin, ""); !slices.Equal(got, both) {
		t.Errorf("admin's list = %v", got)
	}
	if got := list(alice, "?view=interactive"); len(got) != 0 {
		t.Errorf("alice's interactive sessions = %v", got)
	}
	if code, body := e.do(&alice, http.MethodGet, "/skaha/v1/session?type=bogus", nil); code != 400 {
		t.Errorf("bad type filter: %d %s", code, body)
	}

	// Renewing a finished session is refused, as skaha does.
	if code, body := e.do(&alice, http.MethodPost, "/skaha/v1/session/"+ok+"?action=renew", nil); code != 400 || !strings.Contains(body, "No active job") {
		t.Errorf("renew completed: %d %s", code, body)
	}

	// Events for alice's sessions reached the hub, owned by her.
	var sawPending, sawDone bool
	for {
		select {
		case msg, ok := <-sub.C:
			if !ok {
				t.Fatal("the hub dropped the test's subscriber")
			}
			if msg.Owner != "41001" {
				t.Errorf("event %s owned by %q", msg.Type, msg.Owner)
			}
			var ev client.Event
			_ = json.Unmarshal(msg.Data, &ev)
			b, _ := json.Marshal(ev.Data)
			if msg.Type == events.TypeSession {
				var se client.SessionEvent
				_ = json.Unmarshal(b, &se)
				sawPending = sawPending || se.Status == client.StatusPending
			}
			if msg.Type == events.TypePull {
				var pp client.PullProgress
				_ = json.Unmarshal(b, &pp)
				sawDone = sawDone || (pp.Done && pp.Error == "")
			}
			continue
		default:
		}
		break
	}
	if !sawPending || !sawDone {
		t.Errorf("events: pending %v, pull done %v", sawPending, sawDone)
	}
}

func TestWebSession(t *testing.T) {
	e := newEnv(t, nil)
	id := e.launch(alice, form("name", "web", "image", e.image, "type", "contributed"))
	s := e.wait(alice, id, client.StatusRunning, client.StatusFailed)
	if s.Status != client.StatusRunning {
		t.Fatalf("session = %+v", s)
	}
	tg, ok := e.m.Target(id)
	if !ok || tg.Type != "contributed" || !tg.StripPrefix || tg.Owner != "41001" || len(tg.Token) != 32 || !strings.HasPrefix(tg.Addr, "127.0.0.1:") {
		t.Fatalf("target = %+v, %v", tg, ok)
	}
	if want := "http://" + id + ".localhost:8484/session/contributed/" + id + "/?token=" + tg.Token; s.ConnectURL != want {
		t.Errorf("connectURL = %q, want %q", s.ConnectURL, want)
	}
	resp, err := http.Get("http://" + tg.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"skaha_sessionid":"`+id+`"`) || strings.Contains(string(body), "JUPYTER_TOKEN") {
		t.Errorf("session answers %s", body)
	}
	ins, err := e.cli.ContainerInspect(context.Background(), apps.ContainerName(id, ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	for port, bs := range ins.HostConfig.PortBindings {
		for _, b := range bs {
			if b.HostIP != "127.0.0.1" {
				t.Errorf("port %s bound on %q", port, b.HostIP)
			}
		}
	}

	// Another user sees nothing of it.
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/session/" + id},
		{http.MethodGet, "/api/v1/session/" + id + "?view=logs"},
		{http.MethodGet, "/api/v1/session/" + id + "?view=events"},
		{http.MethodPost, "/api/v1/session/" + id + "?action=renew"},
		{http.MethodDelete, "/api/v1/session/" + id},
	} {
		if code, body := e.do(&bob, req.method, req.path, nil); code != http.StatusNotFound || !strings.Contains(body, "not found") {
			t.Errorf("bob %s %s: %d %s", req.method, req.path, code, body)
		}
	}
	if _, code := e.get(admin, id); code != http.StatusOK {
		t.Errorf("admin cannot see the session: %d", code)
	}

	// Renew moves the expiry to now + expiry.
	if err := e.m.update(id, func(s *store.SessionMeta) { s.Expiry = time.Now().Add(time.Hour) }); err != nil {
		t.Fatal(err)
	}
	before, _ := e.get(alice, id)
	if code, body := e.do(&alice, http.MethodPost, "/skaha/v1/session/"+id+"?action=renew", nil); code != 200 {
		t.Fatalf("renew: %d %s", code, body)
	}
	after, _ := e.get(alice, id)
	b, _ := time.Parse(time.RFC3339, before.ExpiryTime)
	a, _ := time.Parse(time.RFC3339, after.ExpiryTime)
	if d := time.Until(a); d < 95*time.Hour || !a.After(b) {
		t.Errorf("renew: expiry %s -> %s", before.ExpiryTime, after.ExpiryTime)
	}
	for _, q := range []string{"", "?action=stop"} {
		if code, _ := e.do(&alice, http.MethodPost, "/skaha/v1/session/"+id+q, nil); code != 400 {
			t.Errorf("POST %q: %d, want 400", q, code)
		}
	}

	// Delete removes the container and the record.
	if code, body := e.do(&alice, http.MethodDelete, "/skaha/v1/session/"+id, nil); code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if _, err := e.cli.ContainerInspect(context.Background(), apps.ContainerName(id, ServiceName)); err == nil {
		t.Error("the container survived the delete")
	}
	if _, code := e.get(alice, id); code != http.StatusNotFound {
		t.Errorf("deleted session: %d", code)
	}
	if _, ok := e.m.Target(id); ok {
		t.Error("a deleted session is still a proxy target")
	}
}

func TestNotebook(t *testing.T) {
	e := newEnv(t, nil)
	id := e.launch(alice, form("name", "nb", "image", e.image, "type", "notebook"))
	s := e.wait(alice, id, client.StatusRunning, client.StatusFailed)
	tg, ok := e.m.Target(id)
	if s.Status != client.StatusRunning || !ok || tg.StripPrefix {
		t.Fatalf("session %+v target %+v", s, tg)
	}
	if want := "http://" + id + ".localhost:8484/session/notebook/" + id + "/lab?token=" + tg.Token; s.ConnectURL != want {
		t.Errorf("connectURL = %q, want %q", s.ConnectURL, want)
	}
	ins, err := e.cli.ContainerInspect(context.Background(), apps.ContainerName(id, ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ins.Config.Cmd, "--ServerApp.token="+tg.Token) || !slices.Contains(ins.Config.Env, "JUPYTER_TOKEN="+tg.Token) {
		t.Errorf("cmd %q", ins.Config.Cmd)
	}
	// The token never shows in the store's JSON of the record.
	rec, _, _ := e.st.App(id)
	b, _ := json.Marshal(rec.Session)
	if strings.Contains(string(b), tg.Token) || strings.Contains(rec.String(), tg.Token) ||
		strings.Contains(fmt.Sprintf("%v %#v", *rec.Session, *rec.Session), tg.Token) {
		t.Error("the token leaks through the session's JSON or String")
	}
}

func TestInteractiveLimit(t *testing.T) {
	e := newEnv(t, nil)
	e.launch(alice, form("name", "a", "image", e.image, "type", "contributed"))
	e.launch(alice, form("name", "b", "image", e.image, "type", "contributed"))
	code, body := e.do(&alice, http.MethodPost, "/skaha/v1/session", form("name", "c", "image", e.image, "type", "contributed"))
	if code != 400 || !strings.Contains(body, "User alice has reached the maximum of 2 active sessions.") {
		t.Errorf("third: %d %s", code, body)
	}
	// Headless sessions and other users do not count.
	e.launch(alice, form("name", "h", "image", e.image, "env", "TESTAPP_EXIT=0"))
	e.launch(bob, form("name", "b", "image", e.image, "type", "contributed"))
}

func TestHome(t *testing.T) {
	e := newEnv(t, nil)
	ls := func() string {
		id := e.launch(alice, form("name", "ls", "image", e.image, "cmd", "/bin/busybox", "args", "ls -lan /home/user"))
		s := e.wait(alice, id, client.StatusCompleted, client.StatusFailed)
		_, logs := e.do(&alice, http.MethodGet, "/api/v1/session/"+id+"?view=logs", nil)
		if s.Status != client.StatusCompleted {
			t.Fatalf("ls: %+v\n%s", s, logs)
		}
		return logs
	}
	logs := ls()
	if !hasEntry(logs, ".baked", "41001", "41001") || !hasEntry(logs, ".", "41001", "41001") {
		t.Fatalf("the baked file is not in the home, owned by alice:\n%s", logs)
	}
	id := e.launch(alice, form("name", "touch", "image", e.image, "cmd", "/bin/busybox", "args", "touch /home/user/persisted"))
	if s := e.wait(alice, id, client.StatusCompleted, client.StatusFailed); s.Status != client.StatusCompleted {
		_, l := e.do(&alice, http.MethodGet, "/api/v1/session/"+id+"?view=logs", nil)
		t.Fatalf("touch: %+v\n%s", s, l)
	}
	if logs := ls(); !hasEntry(logs, "persisted", "41001", "41001") || !hasEntry(logs, ".baked", "41001", "41001") {
		t.Fatalf("the file written by the last session is gone:\n%s", logs)
	}
}

// hasEntry reports whether `ls -ln` output lists name owned by uid:gid.
func hasEntry(ls, name, uid, gid string) bool {
	for _, line := range strings.Split(ls, "\n") {
		f := strings.Fields(line)
		if len(f) >= 9 && f[len(f)-1] == name && f[2] == uid && f[3] == gid {
			return true
		}
	}
	return false
}

func TestExpiryAndIdle(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Config.Expiry.Duration = 3 * time.Second
		o.CheckInterval = 200 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	id := e.launch(alice, form("name", "short", "image", e.image, "type", "contributed"))
	e.wait(alice, id, client.StatusRunning)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, code := e.get(alice, id); code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session outlived its expiry")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := e.cli.ContainerInspect(context.Background(), apps.ContainerName(id, ServiceName)); err == nil {
		t.Error("the expired session's container survived")
	}
}

func TestIdleCulling(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Config.IdleTimeout.Duration = 2 * time.Second
		o.CheckInterval = 200 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	busy := e.launch(alice, form("name", "busy", "image", e.image, "type", "contributed"))
	idle := e.launch(alice, form("name", "idle", "image", e.image, "type", "contributed"))
	touched := make(chan struct{})
	go func() {
		defer close(touched)
		for ctx.Err() == nil {
			e.m.Touch(busy, time.Now())
			time.Sleep(50 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-touched }()
	e.wait(alice, busy, client.StatusRunning)
	e.wait(alice, idle, client.StatusRunning)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, code := e.get(alice, idle); code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle session was not culled")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s, code := e.get(alice, busy)
	if code != http.StatusOK || s.Status != client.StatusRunning || s.LastActivity == "" {
		t.Errorf("the busy session: %d %+v", code, s)
	}
}

func TestRestartReattaches(t *testing.T) {
	e := newEnv(t, nil)
	id := e.launch(alice, form("name", "keep", "image", e.image, "type", "contributed"))
	e.wait(alice, id, client.StatusRunning)
	ins1, err := e.cli.ContainerInspect(context.Background(), apps.ContainerName(id, ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	e.m.Close()
	m2, err := New(e.m.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m2.Run(ctx) }()
	defer func() { cancel(); <-done }()
	s, err := m2.Get(context.Background(), alice, id)
	if err != nil || s.Status != client.StatusRunning {
		t.Fatalf("after a restart: %+v %v", s, err)
	}
	if _, ok := m2.Target(id); !ok {
		t.Error("no proxy target after a restart")
	}
	ins2, err := e.cli.ContainerInspect(context.Background(), apps.ContainerName(id, ServiceName))
	if err != nil || ins2.ID != ins1.ID || ins2.State.StartedAt != ins1.State.StartedAt {
		t.Errorf("the container was replaced or restarted: %v", err)
	}
}
