package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadEvents(t *testing.T) {
	type got struct {
		typ, data string
	}
	tests := []struct {
		name   string
		stream string
		want   []got
		err    error
	}{
		{
			name:   "berthd events with comments and retry",
			stream: ": berthd events\nretry: 3000\n\nevent: pull\ndata: {\"type\":\"pull\",\"time\":\"2026-01-01T00:00:00Z\",\"data\":{\"session\":\"s1\",\"current\":5}}\n\n: heartbeat\n\n",
			want:   []got{{"pull", `{"session":"s1","current":5}`}},
			err:    ErrEventsEnded,
		},
		{
			name:   "no event field means message; multi-line data joined",
			stream: "data: one\ndata: two\n\n",
			want:   []got{{"message", "one\ntwo"}},
			err:    ErrEventsEnded,
		},
		{
			name:   "no space after the colon",
			stream: "event:app\ndata:{\"type\":\"app\",\"data\":{\"id\":\"a\"}}\n\n",
			want:   []got{{"app", `{"id":"a"}`}},
			err:    ErrEventsEnded,
		},
		{
			name:   "an event without a blank line at the end is not dispatched",
			stream: "event: app\ndata: {}\n",
			err:    ErrEventsEnded,
		},
		{
			name:   "dropped ends the stream",
			stream: "event: session\ndata: {\"data\":{\"id\":\"x\"}}\n\nevent: dropped\ndata: {\"message\":\"client too slow; reconnect\"}\n\nevent: app\ndata: {}\n\n",
			want:   []got{{"session", `{"id":"x"}`}},
			err:    ErrEventsEnded,
		},
		{
			name:   "CRLF-free empty event lines are ignored",
			stream: "event: app\n\n\n",
			err:    ErrEventsEnded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out []got
			err := ReadEvents(strings.NewReader(tt.stream), func(e Event) error {
				out = append(out, got{e.Type, string(e.Data.(json.RawMessage))})
				return nil
			})
			if !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if !slices.Equal(out, tt.want) {
				t.Errorf("events = %q, want %q", out, tt.want)
			}
		})
	}
}

func TestReadEventsStopsOnCallbackError(t *testing.T) {
	stop := errors.New("enough")
	n := 0
	err := ReadEvents(strings.NewReader("data: 1\n\ndata: 2\n\n"), func(Event) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("err = %v after %d events", err, n)
	}
}

func TestEventDecode(t *testing.T) {
	var p PullProgress
	e := Event{Type: "pull", Data: json.RawMessage(`{"session":"s1","current":10,"total":20,"layers":2,"layersDone":1}`)}
	if err := e.Decode(&p); err != nil || p.Session != "s1" || p.Total != 20 || p.LayersDone != 1 {
		t.Errorf("Decode = %+v, %v", p, err)
	}
	e = Event{Type: "session", Data: map[string]any{"id": "s2", "status": "Running"}}
	var s SessionEvent
	if err := e.Decode(&s); err != nil || s.ID != "s2" || s.Status != StatusRunning {
		t.Errorf("Decode of a map = %+v, %v", s, err)
	}
	if err := (Event{Type: "pull", Data: json.RawMessage(`[`)}).Decode(&p); err == nil || !strings.Contains(err.Error(), `"pull" event`) {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestLaunchForm(t *testing.T) {
	tests := []struct {
		name string
		req  LaunchRequest
		want string
	}{
		{"minimal", LaunchRequest{Name: "nb-1", Image: "images.example/p/nb:1", Type: TypeNotebook},
			"image=images.example%2Fp%2Fnb%3A1&name=nb-1&type=notebook"},
		{"headless with everything", LaunchRequest{Name: "job", Image: "img", Cores: 2, RAM: 8, Cmd: "/bin/run",
			Args: []string{"--n", "5"}, Env: []string{"A=1", "B=x y"}},
			"args=--n+5&cmd=%2Fbin%2Frun&cores=2&env=A%3D1&env=B%3Dx+y&image=img&name=job&ram=8"},
		{"desktop app", LaunchRequest{Name: "ds9", Image: "img", Type: TypeDesktopApp, Display: ":0", XAuth: "00ff"},
			"display=%3A0&image=img&name=ds9&type=desktop-app&xauth=00ff"},
		{"profile", LaunchRequest{Profile: "gpu-notebook"}, "profile=gpu-notebook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.req.Form().Encode(); got != tt.want {
				t.Errorf("form = %s\nwant   %s", got, tt.want)
			}
		})
	}
}

// recorded is one request the test server saw.
type recorded struct {
	method, uri, ctype, body, auth string
}

func TestSessionRequests(t *testing.T) {
	var seen []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, recorded{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), string(b), r.Header.Get("Authorization")})
		switch {
		case r.Method == "POST" && r.URL.Path == "/api/v1/session":
			_, _ = io.WriteString(w, "abcd1234\n")
		case r.Method == "GET" && r.URL.Path == "/api/v1/session":
			_, _ = io.WriteString(w, `[{"id":"abcd1234","type":"notebook","status":"Running","connectURL":"http://x/session/notebook/abcd1234/?token=t"}]`)
		case r.URL.Path == "/api/v1/session/abcd1234" && r.URL.Query().Get("view") == "logs":
			_, _ = io.WriteString(w, "line 1\nline 2\n")
		case r.URL.Path == "/api/v1/session/abcd1234" && r.Method == "GET":
			_, _ = io.WriteString(w, `{"id":"abcd1234","status":"Pending","message":"pulling"}`)
		case r.URL.Path == "/api/v1/session/gone":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"status":404,"message":"no session gone"}`)
		case r.URL.Path == "/api/v1/nuvla":
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"mode":"nuvla","state":"activating"}`)
		case r.URL.Path == "/api/v1/context":
			_, _ = io.WriteString(w, `{"cores":{"default":2,"options":[1,2,4]},"memoryGB":{"default":4,"options":[1,2,4,8]},"gpus":{"options":[]},"maxInteractiveSessions":5}`)
		default:
			_, _ = io.WriteString(w, `[]`)
		}
	}))
	defer srv.Close()
	c := NewHTTP(srv.URL, "tok")
	ctx := t.Context()

	id, err := c.Launch(ctx, LaunchRequest{Name: "nb-1", Image: "img", Type: TypeNotebook, Cores: 1})
	if err != nil || id != "abcd1234" {
		t.Fatalf("Launch = %q, %v", id, err)
	}
	ss, err := c.Sessions(ctx, SessionFilter{Type: TypeNotebook, Status: StatusRunning})
	if err != nil || len(ss) != 1 || ss[0].ConnectURL == "" {
		t.Fatalf("Sessions = %+v, %v", ss, err)
	}
	s, err := c.Session(ctx, "abcd1234")
	if err != nil || s.Message != "pulling" {
		t.Fatalf("Session = %+v, %v", s, err)
	}
	logs, err := c.SessionLogs(ctx, "abcd1234")
	if err != nil || logs != "line 1\nline 2\n" {
		t.Fatalf("SessionLogs = %q, %v", logs, err)
	}
	if err := c.Renew(ctx, "abcd1234"); err != nil {
		t.Fatal(err)
	}
	var ae *APIError
	if err := c.Delete(ctx, "gone"); !errors.As(err, &ae) || ae.Status != 404 || err.Error() != "no session gone" {
		t.Fatalf("Delete(gone) = %v", err)
	}
	if _, err := c.Images(ctx, TypeContributed); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Menu(ctx, ""); err != nil {
		t.Fatal(err)
	}
	cx, err := c.Context(ctx)
	if err != nil || cx.Cores.Default != 2 || len(cx.MemoryGB.Options) != 4 {
		t.Fatalf("Context = %+v, %v", cx, err)
	}
	if err := c.PutRegistry(ctx, "harbor", RegistryCredential{Server: "h.example", Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRegistry(ctx, "harbor"); err != nil {
		t.Fatal(err)
	}
	st, err := c.ActivateNuvla(ctx, Activation{Endpoint: "https://nuvla.example", NuvlaboxID: "nuvlabox/1"})
	if err != nil || st.State != "activating" {
		t.Fatalf("ActivateNuvla = %+v, %v", st, err)
	}
	if _, err := c.Session(ctx, ""); err == nil {
		t.Error("an empty id reached berthd")
	}

	want := []recorded{
		{"POST", "/api/v1/session", "application/x-www-form-urlencoded", "cores=1&image=img&name=nb-1&type=notebook", "Bearer tok"},
		{"GET", "/api/v1/session?status=Running&type=notebook", "", "", "Bearer tok"},
		{"GET", "/api/v1/session/abcd1234", "", "", "Bearer tok"},
		{"GET", "/api/v1/session/abcd1234?view=logs", "", "", "Bearer tok"},
		{"POST", "/api/v1/session/abcd1234?action=renew", "", "", "Bearer tok"},
		{"DELETE", "/api/v1/session/gone", "", "", "Bearer tok"},
		{"GET", "/api/v1/image?type=contributed", "", "", "Bearer tok"},
		{"GET", "/api/v1/menu", "", "", "Bearer tok"},
		{"GET", "/api/v1/context", "", "", "Bearer tok"},
		{"PUT", "/api/v1/registries/harbor", "application/json", `{"server":"h.example","username":"u","password":"p"}`, "Bearer tok"},
		{"DELETE", "/api/v1/registries/harbor", "", "", "Bearer tok"},
		{"POST", "/api/v1/nuvla", "application/json", `{"endpoint":"https://nuvla.example","nuvlabox-id":"nuvlabox/1"}`, "Bearer tok"},
	}
	if !slices.Equal(seen, want) {
		for i := range max(len(seen), len(want)) {
			var g, w recorded
			if i < len(seen) {
				g = seen[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("request %d = %+v\nwant        %+v", i, g, w)
			}
		}
	}
}

func TestEventsOverHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/events" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, ": berthd events\nretry: 3000\n\n")
		_, _ = io.WriteString(w, "event: telemetry\ndata: {\"type\":\"telemetry\",\"data\":{}}\n\n")
		_, _ = io.WriteString(w, "event: session\ndata: {\"type\":\"session\",\"time\":\"2026-01-01T00:00:00Z\",\"data\":{\"id\":\"s1\",\"status\":\"Running\"}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var got []SessionEvent
	err := NewHTTP(srv.URL, "").Events(ctx, []string{"session"}, func(e Event) error {
		var s SessionEvent
		if err := e.Decode(&s); err != nil {
			return err
		}
		if e.Time.IsZero() {
			t.Error("event time not decoded")
		}
		got = append(got, s)
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Events = %v, want context.Canceled", err)
	}
	if len(got) != 1 || got[0].ID != "s1" || got[0].Status != StatusRunning {
		t.Errorf("session events = %+v", got)
	}
}
