package sessionproxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"golang.org/x/net/websocket"

	bclient "github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/api"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
)

// idleBackend is an api.Backend with nothing running.
type idleBackend struct{}

func (idleBackend) Status(context.Context) bclient.Status       { return bclient.Status{} }
func (idleBackend) Apps(context.Context) ([]bclient.App, error) { return nil, nil }

// runSession starts image as a container labelled berth.app=id, with port
// published on 127.0.0.1 (an ephemeral host port), and returns that address.
func runSession(t *testing.T, cli *client.Client, id, image string, port string, entrypoint []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	enginetest.CleanupApp(t, cli, id)
	p := nat.Port(port + "/tcp")
	created, err := cli.ContainerCreate(ctx, &container.Config{
		Image:        image,
		Entrypoint:   entrypoint,
		ExposedPorts: nat.PortSet{p: {}},
		Labels:       map[string]string{"berth.app": id, "berth.test": "true"},
	}, &container.HostConfig{
		PortBindings: nat.PortMap{p: {{HostIP: "127.0.0.1", HostPort: ""}}},
	}, nil, nil, "berth-proxytest-"+id)
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	ins, err := cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	for _, b := range ins.NetworkSettings.Ports[p] {
		if b.HostIP == "127.0.0.1" && b.HostPort != "" {
			return net.JoinHostPort(b.HostIP, b.HostPort)
		}
	}
	t.Fatalf("%s: no 127.0.0.1 binding for %s in %+v", id, p, ins.NetworkSettings.Ports)
	return ""
}

// waitUp polls u until it answers something other than 502.
func waitUp(t *testing.T, c *http.Client, u string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(u)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still not up: %v", u, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func fetch(t *testing.T, c *http.Client, u string, hdr http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wsEcho dials a WebSocket at u with the cookies jar holds for it and
// checks one echo.
func wsEcho(t *testing.T, jar http.CookieJar, u string) {
	t.Helper()
	pu, _ := url.Parse(u)
	wsURL := "ws" + strings.TrimPrefix(u, "http")
	cfg, err := websocket.NewConfig(wsURL, pu.Scheme+"://"+pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	var cs []string
	for _, c := range jar.Cookies(pu) {
		cs = append(cs, c.Name+"="+c.Value)
	}
	cfg.Header.Set("Cookie", strings.Join(cs, "; "))
	conn, err := localDial(context.Background(), "tcp", pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("websocket %s: %v", u, err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(10 * time.Second))
	if err := websocket.Message.Send(ws, "ping through berth"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil || got != "ping through berth" {
		t.Fatalf("websocket echo: %q %v", got, err)
	}
}

// localDial connects to a loopback listener, resolving <name>.localhost to
// 127.0.0.1 as browsers do (Go's resolver does not).
func localDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(host, ".localhost") {
		host = "127.0.0.1"
	}
	return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(host, port))
}

// browserClient is an HTTP client that resolves *.localhost like a
// browser, with an optional cookie jar.
func browserClient(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: localDial}}
}

// TestEndToEndDocker runs a notebook-like and a contributed session image
// in real containers and opens them through berthd's real API server (web
// listener and unix socket) with the proxy mounted.
func TestEndToEndDocker(t *testing.T) {
	cli := enginetest.Docker(t)
	nbImage := enginetest.BuildNotebookImage(t, enginetest.NotebookImage)
	ctImage := enginetest.BuildContributedImage(t, enginetest.ContributedImage)

	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e8)
	nbID, ctID := "nb"+suffix, "ct"+suffix
	nbTok, ctTok := "nbtok-"+suffix+"-0123456789abcdef", "cttok-"+suffix+"-0123456789abcdef"
	res := newResolver(
		Target{ID: nbID, Type: bclient.TypeNotebook, Owner: "0", Token: nbTok},
		Target{ID: ctID, Type: bclient.TypeContributed, Owner: "0", Token: ctTok, StripPrefix: true},
	)

	dir := t.TempDir()
	srv, err := api.New(idleBackend{}, api.Options{
		Socket:       filepath.Join(dir, "berthd.sock"),
		WebListen:    "127.0.0.1:0",
		WebTokenFile: filepath.Join(dir, "web-token"),
		SessionProxy: New(res, slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	wu, _ := url.Parse(srv.WebURL())
	ui := "http://" + wu.Host
	// Each session has an origin of its own: http://<id>.localhost:<port>.
	origin := func(id string) string { return "http://" + id + ".localhost:" + wu.Port() }
	plain := browserClient(nil)

	t.Run("origins", func(t *testing.T) {
		noRedirect := browserClient(nil)
		noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := noRedirect.Get(ui + "/session/notebook/" + nbID + "/lab?token=" + nbTok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := origin(nbID) + "/session/notebook/" + nbID + "/lab?token=" + nbTok; resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
			t.Errorf("a session URL on the UI's host: %d %q, want a redirect to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		// A session's origin serves that session only: not the API, not the UI, not another session.
		for _, path := range []string{"/api/v1/status", "/", "/session/contributed/" + ctID + "/"} {
			if code, body := fetch(t, plain, origin(nbID)+path, nil); code != http.StatusNotFound {
				t.Errorf("%s on the notebook's origin: %d %q", path, code, body)
			}
		}
	})

	// Before the container has a port: starting.
	code, body := fetch(t, plain, origin(nbID)+"/session/notebook/"+nbID+"/lab?token="+nbTok, nil)
	if code != http.StatusBadGateway || !strings.Contains(body, "is starting") {
		t.Errorf("before start: %d %q", code, body)
	}

	nbAddr := runSession(t, cli, nbID, nbImage, "8888", []string{"jupyter", "lab",
		"--ServerApp.base_url=/session/notebook/" + nbID + "/", "--ServerApp.port=8888", "--ServerApp.ip=0.0.0.0",
		"--ServerApp.token=" + nbTok, "--no-browser"})
	ctAddr := runSession(t, cli, ctID, ctImage, "5000", nil)
	res.mu.Lock()
	nb := res.targets[nbID]
	nb.Addr = nbAddr
	res.targets[nbID] = nb
	ct := res.targets[ctID]
	ct.Addr = ctAddr
	res.targets[ctID] = ct
	res.mu.Unlock()

	t.Run("notebook", func(t *testing.T) {
		connect := origin(nbID) + "/session/notebook/" + nbID + "/lab?token=" + nbTok
		waitUp(t, plain, connect)
		jar, _ := cookiejar.New(nil)
		browser := browserClient(jar)
		code, body := fetch(t, browser, connect, nil)
		if code != http.StatusOK || !strings.Contains(body, "testapp-jupyterlab at /session/notebook/"+nbID+"/") {
			t.Fatalf("connect URL: %d %q", code, body)
		}
		// Cookies alone from now on: berth's and Jupyter's own.
		code, body = fetch(t, browser, origin(nbID)+"/session/notebook/"+nbID+"/api/status", nil)
		if code != http.StatusOK || !strings.Contains(body, `"app":"jupyter"`) {
			t.Errorf("with cookies: %d %q", code, body)
		}
		wsEcho(t, jar, origin(nbID)+"/session/notebook/"+nbID+"/api/echo")
		// berthd's UI policy does not constrain the app's pages.
		resp, err := browser.Get(origin(nbID) + "/session/notebook/" + nbID + "/lab")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != http.StatusOK || csp != "" || resp.Header.Get("X-Frame-Options") != "" {
			t.Errorf("proxied page: %d, CSP %q, X-Frame-Options %q", resp.StatusCode, csp, resp.Header.Get("X-Frame-Options"))
		}

		if code, body := fetch(t, plain, origin(nbID)+"/session/notebook/"+nbID+"/lab", nil); code != http.StatusUnauthorized {
			t.Errorf("no token: %d %q", code, body)
		}
		if code, body := fetch(t, plain, origin(nbID)+"/session/notebook/"+nbID+"/lab?token="+ctTok, nil); code != http.StatusUnauthorized {
			t.Errorf("the contributed session's token: %d %q", code, body)
		}
		if code, body := fetch(t, plain, origin(nbID)+"/session/notebook/"+nbID+"/lab",
			http.Header{"Cookie": {CookieName + "=" + ctTok}}); code != http.StatusUnauthorized {
			t.Errorf("the contributed session's cookie: %d %q", code, body)
		}
		// The desktop app's way: the unix socket, with a bearer token.
		sock := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(dir, "berthd.sock"))
			}}}
		code, body = fetch(t, sock, "http://berthd/session/notebook/"+nbID+"/api/status",
			http.Header{"Authorization": {"Bearer " + nbTok}})
		if code != http.StatusOK || !strings.Contains(body, `"app":"jupyter"`) {
			t.Errorf("unix socket with bearer: %d %q", code, body)
		}
		if code, _ := fetch(t, sock, "http://berthd/session/notebook/"+nbID+"/api/status", nil); code != http.StatusUnauthorized {
			t.Errorf("unix socket without token: %d", code)
		}
	})

	t.Run("contributed", func(t *testing.T) {
		// With a cookie jar: the token is traded for a cookie by a redirect,
		// and only the redirected request reaches the app.
		wjar, _ := cookiejar.New(nil)
		waitUp(t, browserClient(wjar), origin(ctID)+"/session/contributed/"+ctID+"/healthz?token="+ctTok)
		jar, _ := cookiejar.New(nil)
		browser := browserClient(jar)
		code, body := fetch(t, browser, origin(ctID)+"/session/contributed/"+ctID+"/?token="+ctTok, nil)
		if code != http.StatusOK || !strings.Contains(body, `"PORT":"5000"`) {
			t.Fatalf("connect URL (prefix stripped, so the app's / answers): %d %q", code, body)
		}
		if strings.Contains(body, ctTok) {
			t.Errorf("the session token reached the app: %q", body)
		}
		wsEcho(t, jar, origin(ctID)+"/session/contributed/"+ctID+"/ws")

		if code, body := fetch(t, plain, origin(ctID)+"/session/contributed/"+ctID+"/", nil); code != http.StatusUnauthorized {
			t.Errorf("no token: %d %q", code, body)
		}
		if code, body := fetch(t, plain, origin(ctID)+"/session/contributed/"+ctID+"/?token="+nbTok, nil); code != http.StatusUnauthorized {
			t.Errorf("the notebook's token: %d %q", code, body)
		}
	})

	if res.touchCount(nbID) == 0 || res.touchCount(ctID) == 0 {
		t.Errorf("touches: notebook %d, contributed %d", res.touchCount(nbID), res.touchCount(ctID))
	}
}
