// Package nuvla is a client of the Nuvla REST API as an edge agent speaks it:
// api-key sessions kept in a cookie jar (with one re-login when the server
// answers 401 or 403), CIMI-style resources (add, get, edit, delete, search,
// operations), and the box actions activate, commission and heartbeat.
//
// Every call takes a context; errors from the server are *APIError values
// that say whether retrying can help.
package nuvla

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// gzipThreshold is the body size above which requests are compressed (when
// that actually makes them smaller).
const gzipThreshold = 1024

// Options configure a Client.
type Options struct {
	// Endpoint is the server's base URL without /api, e.g. https://nuvla.io.
	Endpoint string
	// Insecure skips TLS verification and lets session cookies marked
	// Secure travel over plain http, as NuvlaEdge does with
	// NUVLA_ENDPOINT_INSECURE.
	Insecure bool
	// Timeout bounds each request (default 30s) in addition to the context.
	Timeout   time.Duration
	Logger    *slog.Logger
	UserAgent string
}

// Client talks to one Nuvla endpoint as one identity.
type Client struct {
	base string
	hc   *http.Client
	log  *slog.Logger
	ua   string

	mu     sync.Mutex
	key    string
	secret string
}

// New returns a client; it performs no I/O.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(opts.Endpoint, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("nuvla endpoint %q is not an http(s) URL", opts.Endpoint)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("cookie jar: %w", err)
	}
	var j http.CookieJar = jar
	if opts.Insecure && u.Scheme == "http" {
		j = insecureJar{jar}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if opts.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the operator asked for it
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "berthd"
	}
	return &Client{
		base: u.String(),
		hc:   &http.Client{Jar: j, Transport: tr, Timeout: opts.Timeout},
		log:  opts.Logger,
		ua:   opts.UserAgent,
	}, nil
}

// insecureJar drops the Secure flag so that a session cookie set by an
// http endpoint is sent back to it.
type insecureJar struct{ *cookiejar.Jar }

func (j insecureJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	for _, c := range cs {
		c.Secure = false
	}
	j.Jar.SetCookies(u, cs)
}

// Endpoint returns the base URL.
func (c *Client) Endpoint() string { return c.base }

// CloseIdle releases idle connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// APIError is an error answer from the server.
type APIError struct {
	Method, Path string
	StatusCode   int
	Message      string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("nuvla %s %s: %d %s", e.Method, e.Path, e.StatusCode, msg)
}

// Retryable reports whether the same request may succeed later.
func (e *APIError) Retryable() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout
}

// StatusCode returns the HTTP status of an *APIError in err's chain, or 0.
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// IsNotFound, IsConflict and IsForbidden classify server answers.
func IsNotFound(err error) bool  { return StatusCode(err) == http.StatusNotFound }
func IsConflict(err error) bool  { return StatusCode(err) == http.StatusConflict }
func IsForbidden(err error) bool { s := StatusCode(err); return s == 401 || s == 403 }

// Retryable reports whether err is worth retrying: network failures and
// 5xx/429 answers are; other server answers are not.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	return true
}

// SetCredentials sets the api key used by Login and by re-login.
func (c *Client) SetCredentials(key, secret string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key, c.secret = key, secret
}

// HasCredentials reports whether an api key is set.
func (c *Client) HasCredentials() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.key != ""
}

// Login opens a session with the api key; the cookie lands in the jar.
func (c *Client) Login(ctx context.Context) error {
	c.mu.Lock()
	key, secret := c.key, c.secret
	c.mu.Unlock()
	if key == "" {
		return errors.New("nuvla login: no api key")
	}
	body := map[string]any{"template": map[string]any{
		"href": "session-template/api-key", "key": key, "secret": secret,
	}}
	if err := c.send(ctx, http.MethodPost, "/api/session", nil, body, "", nil); err != nil {
		return fmt.Errorf("log in as %s: %w", key, err)
	}
	return nil
}

// do sends a request and, when the session was refused, logs in again once
// and retries.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, contentType string, out any) error {
	err := c.send(ctx, method, path, query, body, contentType, out)
	if !IsForbidden(err) || path == "/api/session" || !c.HasCredentials() {
		return err
	}
	c.log.Info("nuvla session refused, logging in again", "path", path, "status", StatusCode(err))
	if lerr := c.Login(ctx); lerr != nil {
		return errors.Join(err, lerr)
	}
	return c.send(ctx, method, path, query, body, contentType, out)
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any, contentType string, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	gzipped := false
	if body != nil {
		var b []byte
		switch v := body.(type) {
		case []byte:
			b = v
		case url.Values:
			b = []byte(v.Encode())
		default:
			var err error
			if b, err = json.Marshal(body); err != nil {
				return fmt.Errorf("encode %s %s body: %w", method, path, err)
			}
		}
		if contentType == "" {
			contentType = "application/json"
		}
		if len(b) > gzipThreshold {
			if z := gzipBytes(b); len(z) < len(b) {
				b, gzipped = z, true
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{Method: method, Path: path, StatusCode: resp.StatusCode}
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &m) == nil {
			ae.Message = m.Message
		}
		return ae
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b) // writes to a bytes.Buffer cannot fail
	_ = zw.Close()
	return buf.Bytes()
}

// Get reads the resource id ("type/uuid") into out, optionally selecting keys.
func (c *Client) Get(ctx context.Context, id string, out any, selects ...string) error {
	var q url.Values
	if len(selects) > 0 {
		q = url.Values{"select": {strings.Join(selects, ",")}}
	}
	return c.do(ctx, http.MethodGet, "/api/"+id, q, nil, "", out)
}

// Edit merges body's top-level keys into the resource; keys listed in
// remove are deleted first. out may be nil.
func (c *Client) Edit(ctx context.Context, id string, body any, out any, remove ...string) error {
	var q url.Values
	if len(remove) > 0 {
		q = url.Values{"select": remove}
	}
	return c.do(ctx, http.MethodPut, "/api/"+id, q, body, "", out)
}

// Patch applies an RFC 6902 JSON patch to the resource.
func (c *Client) Patch(ctx context.Context, id string, patch json.RawMessage, out any, remove ...string) error {
	var q url.Values
	if len(remove) > 0 {
		q = url.Values{"select": remove}
	}
	return c.do(ctx, http.MethodPut, "/api/"+id, q, []byte(patch), "application/json-patch+json", out)
}

// Add creates a resource in collection and returns its id.
func (c *Client) Add(ctx context.Context, collection string, body any) (string, error) {
	var r struct {
		ResourceID string `json:"resource-id"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/"+collection, nil, body, "", &r); err != nil {
		return "", err
	}
	return r.ResourceID, nil
}

// Delete removes a resource.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/"+id, nil, nil, "", nil)
}

// Query is a CIMI search.
type Query struct {
	Filter  string
	Select  []string
	OrderBy string
	Last    int
}

// Search returns the resources of collection that match q. The parameters
// travel as a form body of a PUT, as Nuvla's own clients send them.
func (c *Client) Search(ctx context.Context, collection string, q Query) ([]json.RawMessage, error) {
	form := url.Values{}
	if q.Filter != "" {
		form.Set("filter", q.Filter)
	}
	if len(q.Select) > 0 {
		form.Set("select", strings.Join(q.Select, ","))
	}
	if q.OrderBy != "" {
		form.Set("orderby", q.OrderBy)
	}
	if q.Last > 0 {
		form.Set("last", strconv.Itoa(q.Last))
	}
	var r struct {
		Resources []json.RawMessage `json:"resources"`
	}
	err := c.do(ctx, http.MethodPut, "/api/"+collection, nil, form, "application/x-www-form-urlencoded", &r)
	return r.Resources, err
}

// Operation calls a resource action such as nuvlabox/<U>/commission.
func (c *Client) Operation(ctx context.Context, id, op string, body any, out any) error {
	if body == nil {
		body = map[string]any{}
	}
	return c.do(ctx, http.MethodPost, "/api/"+id+"/"+op, nil, body, "", out)
}

// Activate performs the one-shot, unauthenticated activation of a box and
// returns its api key. The caller must persist the key before anything else:
// activation cannot be repeated.
func (c *Client) Activate(ctx context.Context, boxID string) (key, secret string, err error) {
	var r struct {
		APIKey    string `json:"api-key"`
		SecretKey string `json:"secret-key"`
	}
	if err := c.send(ctx, http.MethodPost, "/api/"+boxID+"/activate", nil, map[string]any{}, "", &r); err != nil {
		return "", "", fmt.Errorf("activate %s: %w", boxID, err)
	}
	if r.APIKey == "" || r.SecretKey == "" {
		return "", "", fmt.Errorf("activate %s: the answer holds no api key", boxID)
	}
	return r.APIKey, r.SecretKey, nil
}

// HeartbeatResponse is the answer to a heartbeat.
type HeartbeatResponse struct {
	DocLastUpdated string   `json:"doc-last-updated"`
	Jobs           []string `json:"jobs"`
}

// Heartbeat tells the server the box is alive; the answer carries job ids.
func (c *Client) Heartbeat(ctx context.Context, boxID string) (HeartbeatResponse, error) {
	var r HeartbeatResponse
	err := c.Operation(ctx, boxID, "heartbeat", nil, &r)
	return r, err
}
