package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/berth-edge/berth/daemon/internal/nuvla"
)

func TestParamIDMatchesAgent(t *testing.T) {
	dep := "deployment/7b1ee2c5-4a2e-4e3f-9bb6-6c3f0e1f2a3b"
	for _, name := range []string{"url", "tcp.8080", "result"} {
		want := nuvla.ParameterID(dep, "", name)
		if got := "deployment-parameter/" + paramID(dep, name); got != want {
			t.Errorf("paramID(%q) = %s, want %s", name, got, want)
		}
	}
}

func TestPrintEnvRedacts(t *testing.T) {
	var b strings.Builder
	printEnv(&b, map[string]string{"A": "1", "NUVLA_API_SECRET": "s", "db_password": "p", "Z": "x=y"})
	want := "A=1\nNUVLA_API_SECRET=<redacted>\nZ=x=y\ndb_password=<redacted>\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestHandler(t *testing.T) {
	t.Setenv("TESTAPP_PROBE", "here")
	srv := httptest.NewServer(handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Env      map[string]string `json:"env"`
		Hostname string            `json:"hostname"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || m.Env["TESTAPP_PROBE"] != "here" || m.Hostname == "" {
		t.Errorf("GET /: %d %+v", resp.StatusCode, m)
	}
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Errorf("GET /healthz: %d %q", resp.StatusCode, b)
	}
}

func TestPublishRetriesUntilParameterExists(t *testing.T) {
	dep := "deployment/abc"
	wantPath := "/api/deployment-parameter/" + paramID(dep, "answer")
	var mu sync.Mutex
	puts := 0
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/session":
			var body struct {
				Template map[string]string `json:"template"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			if body.Template["key"] != "k" || body.Template["secret"] != "s" || body.Template["href"] != "session-template/api-key" {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: "com.sixsq.nuvla.cookie", Value: "tok", Path: "/"})
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPut && r.URL.Path == wantPath:
			if c, err := r.Cookie("com.sixsq.nuvla.cookie"); err != nil || c.Value != "tok" {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			puts++
			if puts == 1 {
				w.WriteHeader(http.StatusNotFound) // the agent has not created it yet
				return
			}
			var body map[string]string
			_ = json.NewDecoder(r.Body).Decode(&body)
			got = body["value"]
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	t.Setenv("NUVLA_ENDPOINT", srv.URL+"/")
	t.Setenv("NUVLA_API_KEY", "k")
	t.Setenv("NUVLA_API_SECRET", "s")
	t.Setenv("NUVLA_DEPLOYMENT_ID", dep)
	publish(t.Context(), "answer=42")
	mu.Lock()
	defer mu.Unlock()
	if got != "42" || puts != 2 {
		t.Errorf("value %q after %d puts, want 42 after 2", got, puts)
	}
}
