// Package client is the Go client of berthd's local API: HTTP/JSON over the
// unix socket (New) or over the loopback web listener with its token
// (NewHTTP). The berth CLI and berth-desktop use it; neither ever opens
// berthd's store.
//
// Every method takes a context; a Client has no timeout of its own, so give
// the context a deadline.
package client

import (
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
)

// DefaultSocket is where berthd listens unless configured otherwise.
const DefaultSocket = "/run/berth/berthd.sock"

// maxBody bounds how much of an answer the client reads.
const maxBody = 32 << 20

// Client talks to one berthd. It is safe for concurrent use.
type Client struct {
	http  *http.Client
	base  string // "http://berthd" for the socket, the base URL otherwise
	token string
	// where names berthd in error messages: the socket path or base URL.
	where  string
	socket bool
}

// New returns a client of the local API on the unix socket at path.
func New(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return c, nil
		},
		MaxIdleConns:       4,
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	return &Client{
		http:   &http.Client{Transport: tr},
		base:   "http://berthd",
		where:  socket,
		socket: true,
	}
}

// NewHTTP returns a client of berthd's web listener at baseURL (for example
// "http://127.0.0.1:8484"), authenticating with the web token.
func NewHTTP(baseURL, token string) *Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		Proxy: nil, // the listener is on loopback: never go through a proxy
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return c, nil
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	base := strings.TrimRight(baseURL, "/")
	return &Client{
		http:  &http.Client{Transport: tr},
		base:  base,
		token: token,
		where: base,
	}
}

// APIError is an error answer of berthd: the HTTP status and the message of
// its JSON body.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("berthd answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// UnreachableError means berthd could not be reached at all: the socket is
// missing, refuses connections, or may not be opened by this user.
type UnreachableError struct {
	// Addr is the socket path or base URL.
	Addr string
	Err  error
	// socket selects the hint.
	socket bool
}

func (e *UnreachableError) Error() string {
	hint := "is berthd running with the web UI enabled?"
	if e.socket {
		hint = "is berthd running? are you in the berth group?"
	}
	return fmt.Sprintf("cannot reach berthd at %s: %v (%s)", e.Addr, e.Err, hint)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// dialError marks a failure to connect, as opposed to a failure later on.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// Status returns berthd's state and its control-plane link.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.Get(ctx, "/api/v1/status", &s)
	return s, err
}

// Apps returns every app berthd knows of.
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	apps := []App{}
	if err := c.Get(ctx, "/api/v1/apps", &apps); err != nil {
		return nil, err
	}
	return apps, nil
}

// App returns one app by id; an unknown id is an *APIError with Status 404.
func (c *Client) App(ctx context.Context, id string) (App, error) {
	var a App
	if id == "" {
		return a, errors.New("app id is empty")
	}
	err := c.Get(ctx, "/api/v1/apps/"+url.PathEscape(id), &a)
	return a, err
}

// Get fetches path (for example "/api/v1/status") and decodes the JSON answer
// into out; a *json.RawMessage receives the body untouched.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	body, err := c.do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], body...)
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding the answer to GET %s: %w", path, err)
	}
	return nil
}

// do sends one request with an optional body of contentType and returns
// the answer's body; a non-2xx answer is an *APIError.
func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader) ([]byte, error) {
	resp, err := c.send(ctx, method, path, contentType, body)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, apiError(resp.StatusCode, b)
	}
	return b, nil
}

// send sends one request and returns the open answer, whatever its status.
func (c *Client) send(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("request for %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "berth-client")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if de, ok := errors.AsType[*dialError](err); ok {
			return nil, &UnreachableError{Addr: c.where, Err: dialCause(de.err), socket: c.socket}
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s from berthd at %s: %w", method, path, c.where, ctxErr)
		}
		return nil, fmt.Errorf("%s %s from berthd at %s: %w", method, path, c.where, err)
	}
	return resp, nil
}

// apiError builds the error of a non-2xx answer from its body.
func apiError(code int, body []byte) error {
	var e Error
	if err := json.Unmarshal(body, &e); err == nil && e.Message != "" {
		return &APIError{Status: code, Message: e.Message}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &APIError{Status: code, Message: msg}
}

// dialCause strips the "dial unix <path>:" prefix the error message repeats.
func dialCause(err error) error {
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Err != nil {
		return oe.Err
	}
	return err
}
