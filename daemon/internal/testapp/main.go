// Command testapp is a tiny HTTP app that berth's tests run in containers.
// It is a standalone program (standard library only, built with
// CGO_ENABLED=0 into an image FROM scratch), so it imports nothing from the
// project.
//
//	GET /         200 {"env": {...every environment variable...}, "hostname": "..."}
//	GET /healthz  200 "ok"
//	GET /ws       a WebSocket that echoes every message (contributed apps
//	              serve HTTP and WebSockets)
//
// Called as `jupyter ...` (a copy or link named jupyter) or with "lab" as its
// first argument, it imitates a notebook server instead, as the notebook
// test image needs: `jupyter lab --ServerApp.base_url=/session/notebook/<id>/
// --ServerApp.port=8888 --ServerApp.token=<t>` serves everything under the
// base URL (<base>lab an HTML page, <base>api/status JSON, <base>api/echo a
// WebSocket echo) only to requests carrying the token (?token=, or
// "Authorization: token <t>", then the cookie it sets), answering 403
// otherwise and 404 outside the base URL. The token defaults to
// $JUPYTER_TOKEN, the port to 8888; other flags are ignored.
//
// `testapp get <url>` instead fetches url and exits 0 on a 200 answer, 1
// otherwise: health checks and connectivity tests use it (the image has no
// shell and no curl).
//
// Environment:
//
//	PORT            port to listen on (default 8080)
//	TESTAPP_EXIT    if a number, exit with that code right after printing the environment
//	TESTAPP_OUTPUT  "name=value": publish an output parameter of the Nuvla deployment
//	                NUVLA_DEPLOYMENT_ID with the deployment's NUVLA_API_KEY/NUVLA_API_SECRET
//	                at NUVLA_ENDPOINT (NUVLA_ENDPOINT_INSECURE=true skips TLS verification)
//
// On start it prints its environment, one KEY=VALUE per line, with the values
// of keys containing SECRET or PASSWORD replaced by <redacted>.
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const publishDeadline = 60 * time.Second

func main() {
	if len(os.Args) == 3 && os.Args[1] == "get" {
		os.Exit(get(os.Args[2]))
	}
	run := run
	if notebookMode(os.Args) {
		run = func() (int, error) { return runJupyter(os.Args[1:]) }
	}
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run() (int, error) {
	env := environ()
	printEnv(os.Stdout, env)
	if s, ok := os.LookupEnv("TESTAPP_EXIT"); ok && s != "" {
		code, err := strconv.Atoi(s)
		if err != nil {
			return 2, fmt.Errorf("TESTAPP_EXIT=%q is not a number", s)
		}
		fmt.Printf("testapp: exiting with code %d as TESTAPP_EXIT asks\n", code)
		return code, nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return 1, fmt.Errorf("listen on port %s: %w", port, err)
	}
	fmt.Printf("testapp: listening on %s\n", ln.Addr())

	done := make(chan struct{})
	if spec := os.Getenv("TESTAPP_OUTPUT"); spec != "" {
		go func() {
			defer close(done)
			publish(ctx, spec)
		}()
	} else {
		close(done)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return 1, fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-done
	fmt.Println("testapp: stopped")
	return 0, nil
}

func environ() map[string]string {
	env := make(map[string]string)
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

func printEnv(w io.Writer, env map[string]string) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := env[k]
		if u := strings.ToUpper(k); strings.Contains(u, "SECRET") || strings.Contains(u, "PASSWORD") {
			v = "<redacted>"
		}
		fmt.Fprintf(w, "%s=%s\n", k, v)
	}
}

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"env": environ(), "hostname": host})
	})
	mux.HandleFunc("GET /ws", wsEcho)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	})
	return mux
}

// paramID is Nuvla's deployment-parameter id: a name-based UUID (version 3)
// of "<deployment id>::<name>", computed like Java's UUID.nameUUIDFromBytes
// (md5 of the bytes alone, no namespace).
func paramID(deploymentID, name string) string {
	b := md5.Sum([]byte(deploymentID + "::" + name))
	b[6] = (b[6] & 0x0f) | 0x30
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// publish sets the output parameter named in spec ("name=value"), retrying
// until it succeeds or publishDeadline passes: the agent may not have
// created the parameter yet.
func publish(ctx context.Context, spec string) {
	name, value, ok := strings.Cut(spec, "=")
	if !ok || name == "" {
		fmt.Printf("testapp: output: TESTAPP_OUTPUT=%q is not name=value\n", spec)
		return
	}
	endpoint := strings.TrimRight(os.Getenv("NUVLA_ENDPOINT"), "/")
	key, secret := os.Getenv("NUVLA_API_KEY"), os.Getenv("NUVLA_API_SECRET")
	depID := os.Getenv("NUVLA_DEPLOYMENT_ID")
	if endpoint == "" || key == "" || secret == "" || depID == "" {
		fmt.Println("testapp: output: NUVLA_ENDPOINT, NUVLA_API_KEY, NUVLA_API_SECRET and NUVLA_DEPLOYMENT_ID must all be set; not publishing")
		return
	}
	jar, _ := cookiejar.New(nil) // New never fails without options
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if os.Getenv("NUVLA_ENDPOINT_INSECURE") == "true" {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in for test servers
	}
	c := &nuvlaClient{hc: &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second}, endpoint: endpoint}
	url := endpoint + "/api/deployment-parameter/" + paramID(depID, name)

	ctx, cancel := context.WithTimeout(ctx, publishDeadline)
	defer cancel()
	loggedIn := false
	for attempt := 1; ; attempt++ {
		err := func() error {
			if !loggedIn {
				if err := c.login(ctx, key, secret); err != nil {
					return err
				}
				loggedIn = true
			}
			status, err := c.put(ctx, url, value)
			if status == http.StatusUnauthorized || status == http.StatusForbidden {
				loggedIn = false
			}
			return err
		}()
		if err == nil {
			fmt.Printf("testapp: output: attempt %d: %s=%s published to %s\n", attempt, name, value, url)
			return
		}
		fmt.Printf("testapp: output: attempt %d: %v\n", attempt, err)
		select {
		case <-ctx.Done():
			fmt.Printf("testapp: output: giving up on %s after %s\n", name, publishDeadline)
			return
		case <-time.After(2 * time.Second):
		}
	}
}

type nuvlaClient struct {
	hc       *http.Client
	endpoint string
}

func (c *nuvlaClient) login(ctx context.Context, key, secret string) error {
	body := map[string]any{"template": map[string]string{
		"href": "session-template/api-key", "key": key, "secret": secret,
	}}
	status, err := c.do(ctx, http.MethodPost, c.endpoint+"/api/session", body)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("login: status %d", status)
	}
	fmt.Printf("testapp: output: logged in (status %d)\n", status)
	return nil
}

func (c *nuvlaClient) put(ctx context.Context, url, value string) (int, error) {
	status, err := c.do(ctx, http.MethodPut, url, map[string]string{"value": value})
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", url, err)
	}
	fmt.Printf("testapp: output: PUT %s: status %d\n", url, status)
	if status != http.StatusOK {
		return status, fmt.Errorf("put %s: status %d", url, status)
	}
	return status, nil
}

func (c *nuvlaClient) do(ctx context.Context, method, url string, body any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 500 {
		return resp.StatusCode, errors.New(resp.Status)
	}
	return resp.StatusCode, nil
}

// get fetches url and returns 0 on 200, 1 otherwise.
func get(url string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp get:", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "testapp get:", resp.Status)
		return 1
	}
	fmt.Println("ok")
	return 0
}
