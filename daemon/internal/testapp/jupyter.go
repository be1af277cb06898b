package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"
)

// jupyterCookie carries the token after it was given once, as Jupyter's
// login cookie does.
const jupyterCookie = "testapp-jupyter-token"

// notebookMode reports whether argv asks for the notebook imitation: the
// program is called "jupyter", or its first argument is "lab" or a path to
// "jupyter".
func notebookMode(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	if path.Base(argv[0]) == "jupyter" {
		return true
	}
	return len(argv) > 1 && (argv[1] == "lab" || path.Base(argv[1]) == "jupyter")
}

// jupyterConfig is what the imitation takes from `jupyter lab` flags.
type jupyterConfig struct {
	BaseURL string // always starts and ends with "/"
	Port    string
	Token   string
}

// parseJupyterArgs reads --ServerApp.base_url, --ServerApp.port and
// --ServerApp.token (as --flag=value or --flag value; NotebookApp. works
// too). Positional words ("jupyter", "lab") and other flags are ignored.
// The token defaults to $JUPYTER_TOKEN, the port to 8888, the base URL to /.
func parseJupyterArgs(args []string, env func(string) string) (jupyterConfig, error) {
	c := jupyterConfig{BaseURL: "/", Port: "8888", Token: env("JUPYTER_TOKEN")}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		name = strings.TrimPrefix(strings.TrimPrefix(name, "ServerApp."), "NotebookApp.")
		switch name {
		case "base_url", "port", "token":
		default:
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return c, fmt.Errorf("flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		switch name {
		case "base_url":
			c.BaseURL = "/" + strings.Trim(val, "/") + "/"
			if c.BaseURL == "//" {
				c.BaseURL = "/"
			}
		case "port":
			c.Port = val
		case "token":
			c.Token = val
		}
	}
	return c, nil
}

// runJupyter serves the notebook imitation until SIGINT/SIGTERM.
func runJupyter(args []string) (int, error) {
	cfg, err := parseJupyterArgs(args, os.Getenv)
	if err != nil {
		return 2, err
	}
	printEnv(os.Stdout, environ())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: jupyterHandler(cfg), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", ":"+cfg.Port)
	if err != nil {
		return 1, fmt.Errorf("listen on port %s: %w", cfg.Port, err)
	}
	fmt.Printf("testapp: jupyter lab imitation at http://%s%slab\n", ln.Addr(), cfg.BaseURL)
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
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return 1, err
	}
	fmt.Println("testapp: stopped")
	return 0, nil
}

// jupyterHandler serves everything under cfg.BaseURL to holders of the
// token (?token=, "Authorization: token|Bearer <t>", then the cookie it
// sets) and answers 403 otherwise; paths outside the base URL are 404.
//
//	<base>lab         an HTML page naming the base URL
//	<base>api/status  {"app":"jupyter","base_url":...,"path":...}
//	<base>api/echo    a WebSocket that echoes messages
//	<base>anything    the same JSON as api/status
func jupyterHandler(cfg jupyterConfig) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, cfg.BaseURL)
		if !ok {
			http.Error(w, "404: not under "+cfg.BaseURL, http.StatusNotFound)
			return
		}
		if !jupyterAuthorised(cfg.Token, r) {
			http.Error(w, "403: Forbidden (token required)", http.StatusForbidden)
			return
		}
		if r.URL.Query().Has("token") {
			http.SetCookie(w, &http.Cookie{Name: jupyterCookie, Value: cfg.Token, Path: cfg.BaseURL, HttpOnly: true})
		}
		switch rest {
		case "lab":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<!doctype html><title>JupyterLab</title><p>testapp-jupyterlab at %s</p>\n", cfg.BaseURL)
		case "api/echo":
			wsEcho(w, r)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"app": "jupyter", "base_url": cfg.BaseURL, "path": r.URL.Path})
		}
	})
}

// jupyterAuthorised: an empty token opens everything, like Jupyter's.
func jupyterAuthorised(token string, r *http.Request) bool {
	if token == "" {
		return true
	}
	eq := func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(token)) == 1 }
	if q := r.URL.Query().Get("token"); q != "" {
		return eq(q)
	}
	if scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok &&
		(strings.EqualFold(scheme, "token") || strings.EqualFold(scheme, "bearer")) && eq(strings.TrimSpace(t)) {
		return true
	}
	if c, err := r.Cookie(jupyterCookie); err == nil && eq(c.Value) {
		return true
	}
	return false
}
