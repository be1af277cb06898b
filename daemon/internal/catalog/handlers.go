package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/api"
	"github.com/berth-edge/berth/daemon/internal/caller"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/httpjson"
	"github.com/berth-edge/berth/daemon/internal/store"
	"github.com/berth-edge/berth/daemon/menu"
)

// ErrorsHeader carries, on GET image, the errors of the sources whose last
// listing failed ("registry:hub: ...; harbor:x: ..."), one line.
const ErrorsHeader = "X-Berth-Catalog-Errors"

// loginTimeout bounds the login check of PUT registries.
const loginTimeout = 30 * time.Second

// maxCredentialBody bounds a PUT registries body.
const maxCredentialBody = 64 << 10

// Routes are the catalog's routes, under /api/v1 and /skaha/v1:
//
//	GET    /image                 []client.Image; ?type= one of client.SessionTypes
//	GET    /repository            []string, the configured registry hosts
//	GET    /menu                  []client.MenuProject (menu.Tree); ?type= as for image
//	GET    /catalog/sources       []SourceStatus
//	GET    /registries            []client.Registry (never a password)
//	PUT    /registries/{name}     {server, username, password}; admins only; checked by logging in
//	DELETE /registries/{name}     admins only; 204
func (c *Catalog) Routes() api.Routes {
	return api.Routes{
		Prefixes: []string{"/api/v1", "/skaha/v1"},
		Handlers: map[string]http.Handler{
			"GET /image":                http.HandlerFunc(c.getImage),
			"GET /repository":           http.HandlerFunc(c.getRepository),
			"GET /menu":                 http.HandlerFunc(c.getMenu),
			"GET /catalog/sources":      http.HandlerFunc(c.getSources),
			"GET /registries":           http.HandlerFunc(c.getRegistries),
			"PUT /registries/{name}":    http.HandlerFunc(c.putRegistry),
			"DELETE /registries/{name}": http.HandlerFunc(c.deleteRegistry),
		},
	}
}

// typeParam reads ?type=, which must be a known session type when given.
func typeParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	typ := r.URL.Query().Get("type")
	if typ != "" && !KnownType(typ) {
		httpjson.Error(w, http.StatusBadRequest,
			fmt.Sprintf("unknown session type %q (known types: %s)", typ, strings.Join(client.SessionTypes, ", ")))
		return "", false
	}
	return typ, true
}

func (c *Catalog) getImage(w http.ResponseWriter, r *http.Request) {
	typ, ok := typeParam(w, r)
	if !ok {
		return
	}
	var errs []string
	for _, s := range c.Sources() {
		if s.Error != "" {
			errs = append(errs, s.Name+": "+s.Error)
		}
	}
	if len(errs) > 0 {
		w.Header().Set(ErrorsHeader, headerSafe(strings.Join(errs, "; ")))
	}
	httpjson.Write(w, http.StatusOK, c.List(r.Context(), typ))
}

// headerSafe keeps a header value on one printable line.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return ' '
		}
		return r
	}, s)
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return s
}

func (c *Catalog) getRepository(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, c.Repositories())
}

func (c *Catalog) getMenu(w http.ResponseWriter, r *http.Request) {
	typ, ok := typeParam(w, r)
	if !ok {
		return
	}
	httpjson.Write(w, http.StatusOK, menu.Tree(c.List(r.Context(), typ)))
}

func (c *Catalog) getSources(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, c.Sources())
}

func (c *Catalog) getRegistries(w http.ResponseWriter, _ *http.Request) {
	creds, err := c.opts.Credentials.Registries()
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, "listing registry credentials: "+err.Error())
		return
	}
	out := make([]client.Registry, 0, len(creds))
	for _, cr := range creds {
		out = append(out, client.Registry{Name: cr.Name, Server: cr.Server, Username: cr.Username})
	}
	httpjson.Write(w, http.StatusOK, out)
}

// admin writes 403 unless the caller is an admin.
func admin(w http.ResponseWriter, r *http.Request) bool {
	if who, ok := caller.FromContext(r.Context()); ok && who.Admin {
		return true
	}
	httpjson.Error(w, http.StatusForbidden, "only administrators (root or the admin group) may change registry credentials")
	return false
}

// credentialBody is the body of PUT registries/{name}.
type credentialBody struct {
	Name     string `json:"name,omitempty"`
	Server   string `json:"server"`
	Username string `json:"username"`
	Password string `json:"password"`
}

func (c *Catalog) putRegistry(w http.ResponseWriter, r *http.Request) {
	if !admin(w, r) {
		return
	}
	name := r.PathValue("name")
	if err := checkName(name); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCredentialBody+1))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	if len(body) > maxCredentialBody {
		httpjson.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxCredentialBody))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var in credentialBody
	if err := dec.Decode(&in); err != nil {
		httpjson.Error(w, http.StatusBadRequest, "the body must be JSON {\"server\", \"username\", \"password\"}: "+err.Error())
		return
	}
	var problems []string
	if in.Name != "" && in.Name != name {
		problems = append(problems, fmt.Sprintf("name %q in the body differs from %q in the path", in.Name, name))
	}
	in.Server = strings.TrimSpace(in.Server)
	if in.Server == "" {
		problems = append(problems, "server is required (a registry host[:port] or URL)")
	} else if _, err := loginURLs(in.Server); err != nil {
		problems = append(problems, err.Error())
	}
	if in.Username == "" {
		problems = append(problems, "username is required")
	}
	if in.Password == "" {
		problems = append(problems, "password is required")
	}
	if len(problems) > 0 {
		httpjson.Error(w, http.StatusBadRequest, "bad registry credential: "+strings.Join(problems, "; "))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), loginTimeout)
	defer cancel()
	if err := c.Login(ctx, in.Server, in.Username, in.Password); err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, ErrUnauthorized) {
			code = http.StatusBadRequest
		}
		httpjson.Error(w, code, "registry credential "+name+" not saved: "+err.Error())
		return
	}
	cred := store.RegistryCredential{Name: name, Server: in.Server, Username: in.Username, Password: in.Password}
	if err := c.opts.Credentials.PutRegistry(cred); err != nil {
		httpjson.Error(w, http.StatusInternalServerError, "saving registry credential: "+err.Error())
		return
	}
	who, _ := caller.FromContext(r.Context())
	c.log.Info("registry credential saved", "name", name, "server", in.Server, "username", in.Username, "by", who.Name)
	c.RefreshSoon()
	httpjson.Write(w, http.StatusOK, client.Registry{Name: name, Server: in.Server, Username: in.Username})
}

func (c *Catalog) deleteRegistry(w http.ResponseWriter, r *http.Request) {
	if !admin(w, r) {
		return
	}
	name := r.PathValue("name")
	if err := checkName(name); err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	_, ok, err := c.opts.Credentials.Registry(name)
	if err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !ok {
		httpjson.Error(w, http.StatusNotFound, "no registry credential "+name)
		return
	}
	if err := c.opts.Credentials.DeleteRegistry(name); err != nil {
		httpjson.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	who, _ := caller.FromContext(r.Context())
	c.log.Info("registry credential deleted", "name", name, "by", who.Name)
	c.RefreshSoon()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// checkName accepts credential names of letters, digits, ".", "_" and
// "-", up to 128 characters.
func checkName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("credential name %q must be 1 to 128 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("credential name %q may only hold letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// Login checks username and password against the registry at server (a
// host[:port] or a URL) by logging in to its /v2/ endpoint, answering a
// Basic or Bearer challenge. A refusal wraps ErrUnauthorized and says so.
// A server given without a scheme is reached over https, except that a
// configured catalog registry on that host lends its URL, and a loopback
// host that does not speak TLS is tried over http (as Docker does).
func (c *Catalog) Login(ctx context.Context, server, username, password string) error {
	urls, err := loginURLs(server)
	if err != nil {
		return err
	}
	insecure := false
	for _, r := range c.opts.Registries {
		if engine.RegistryHost(r.URL) == engine.RegistryHost(server) {
			if !strings.Contains(server, "://") {
				u, _ := url.Parse(r.URL)
				urls = []*url.URL{{Scheme: u.Scheme, Host: u.Host}}
			}
			insecure = r.Insecure
			break
		}
	}
	hc := httpClient(insecure)
	defer hc.CloseIdleConnections()
	var firstErr error
	for _, u := range urls {
		err := newRegClient(u, username, password, hc).ping(ctx)
		if err == nil || errors.Is(err, ErrUnauthorized) {
			return err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return fmt.Errorf("logging in to %s: %w", server, firstErr)
}

// loginURLs are the base URLs to try for a registry server.
func loginURLs(server string) ([]*url.URL, error) {
	if strings.Contains(server, "://") {
		u, err := url.Parse(server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("server %q is not a host[:port] or an http(s) URL", server)
		}
		return []*url.URL{{Scheme: u.Scheme, Host: u.Host}}, nil
	}
	host := strings.TrimSuffix(server, "/")
	if host == "" || strings.ContainsAny(host, "/ ?#@") {
		return nil, fmt.Errorf("server %q is not a host[:port] or an http(s) URL", server)
	}
	if h := engine.RegistryHost(host); h == "docker.io" {
		host = "registry-1.docker.io"
	}
	urls := []*url.URL{{Scheme: "https", Host: host}}
	if isLoopback(host) {
		urls = append(urls, &url.URL{Scheme: "http", Host: host})
	}
	return urls, nil
}

func isLoopback(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
