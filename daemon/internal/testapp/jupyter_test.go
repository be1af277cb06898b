package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

func TestNotebookMode(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want bool
	}{
		{[]string{"/usr/local/bin/jupyter", "lab"}, true},
		{[]string{"jupyter"}, true},
		{[]string{"/testapp", "lab", "--ServerApp.port=8888"}, true},
		{[]string{"/testapp", "jupyter", "lab"}, true},
		{[]string{"/testapp", "/usr/local/bin/jupyter", "lab"}, true},
		{[]string{"/testapp"}, false},
		{[]string{"/testapp", "get", "http://x/"}, false},
		{nil, false},
	} {
		if got := notebookMode(tc.argv); got != tc.want {
			t.Errorf("notebookMode(%q) = %v, want %v", tc.argv, got, tc.want)
		}
	}
}

func TestParseJupyterArgs(t *testing.T) {
	env := func(k string) string {
		if k == "JUPYTER_TOKEN" {
			return "fromenv"
		}
		return ""
	}
	for _, tc := range []struct {
		args    []string
		want    jupyterConfig
		wantErr bool
	}{
		{nil, jupyterConfig{BaseURL: "/", Port: "8888", Token: "fromenv"}, false},
		{[]string{"lab", "--ServerApp.base_url=/session/notebook/ab12/", "--ServerApp.port=8888", "--ServerApp.ip=0.0.0.0", "--ServerApp.token=tok", "--no-browser"},
			jupyterConfig{BaseURL: "/session/notebook/ab12/", Port: "8888", Token: "tok"}, false},
		{[]string{"jupyter", "lab", "--ServerApp.base_url", "session/notebook/x", "--NotebookApp.port", "9999", "--ServerApp.token="},
			jupyterConfig{BaseURL: "/session/notebook/x/", Port: "9999", Token: ""}, false},
		{[]string{"--ServerApp.base_url=/"}, jupyterConfig{BaseURL: "/", Port: "8888", Token: "fromenv"}, false},
		{[]string{"--ServerApp.port"}, jupyterConfig{}, true},
	} {
		got, err := parseJupyterArgs(tc.args, env)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseJupyterArgs(%q): err %v", tc.args, err)
			continue
		}
		if !tc.wantErr && got != tc.want {
			t.Errorf("parseJupyterArgs(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

func TestJupyterHandler(t *testing.T) {
	srv := httptest.NewServer(jupyterHandler(jupyterConfig{BaseURL: "/session/notebook/ab12/", Port: "8888", Token: "sekret"}))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	check := func(path string, hdr http.Header, code int, contains string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code || !strings.Contains(string(b), contains) {
			t.Errorf("GET %s: %d %q, want %d containing %q", path, resp.StatusCode, b, code, contains)
		}
	}
	check("/session/notebook/ab12/lab", nil, 403, "403")
	check("/session/notebook/ab12/lab?token=wrong", nil, 403, "403")
	check("/lab?token=sekret", nil, 404, "not under")
	check("/session/notebook/ab12/api/status", http.Header{"Authorization": {"token sekret"}}, 200, `"app":"jupyter"`)
	check("/session/notebook/ab12/lab?token=sekret", nil, 200, "testapp-jupyterlab at /session/notebook/ab12/")
	check("/session/notebook/ab12/api/status", nil, 200, `"base_url":"/session/notebook/ab12/"`) // the cookie now
}

func TestWebSocketEcho(t *testing.T) {
	for name, h := range map[string]http.Handler{
		"contributed": handler(),
		"notebook":    jupyterHandler(jupyterConfig{BaseURL: "/nb/", Token: "t"}),
	} {
		srv := httptest.NewServer(h)
		path := "/ws"
		if name == "notebook" {
			path = "/nb/api/echo?token=t"
		}
		ws, err := websocket.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+path, "", srv.URL)
		if err != nil {
			srv.Close()
			t.Fatalf("%s: dial: %v", name, err)
		}
		_ = ws.SetDeadline(time.Now().Add(5 * time.Second))
		for _, msg := range []string{"hi", strings.Repeat("x", 70000)} {
			if err := websocket.Message.Send(ws, msg); err != nil {
				t.Fatalf("%s: send: %v", name, err)
			}
			var got string
			if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
				t.Fatalf("%s: echo of %d bytes: got %d bytes, %v", name, len(msg), len(got), err)
			}
		}
		ws.Close()
		srv.Close()
	}
}
