package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LaunchRequest is the form of POST /api/v1/session. Zero values are left
// out of the form, so berthd applies its defaults.
type LaunchRequest struct {
	// Name is the session's name ([A-Za-z0-9-]+).
	Name string
	// Image is the image reference to run.
	Image string
	// Type is one of SessionTypes; "" means headless, as in skaha.
	Type string
	// Cores and RAM (GB) ask for fixed resources; 0 leaves them flexible.
	Cores int
	RAM   int
	// Cmd overrides the image's entrypoint (headless sessions).
	Cmd string
	// Args are the command's arguments, sent space-separated as skaha does.
	Args []string
	// Env are KEY=VALUE pairs.
	Env []string
	// Profile launches an admin profile instead of Image.
	Profile string
	// Display is the X display of a desktop-app session (":0").
	Display string
	// XAuth is the display's MIT-MAGIC-COOKIE-1, hex encoded.
	XAuth string
}

// Form encodes r as the launch form.
func (r LaunchRequest) Form() url.Values {
	f := url.Values{}
	set := func(k, v string) {
		if v != "" {
			f.Set(k, v)
		}
	}
	set("name", r.Name)
	set("image", r.Image)
	set("type", r.Type)
	if r.Cores > 0 {
		f.Set("cores", strconv.Itoa(r.Cores))
	}
	if r.RAM > 0 {
		f.Set("ram", strconv.Itoa(r.RAM))
	}
	set("cmd", r.Cmd)
	set("args", strings.Join(r.Args, " "))
	for _, e := range r.Env {
		f.Add("env", e)
	}
	set("profile", r.Profile)
	set("display", r.Display)
	set("xauth", r.XAuth)
	return f
}

// SessionFilter narrows Sessions; empty fields do not filter.
type SessionFilter struct {
	Type   string
	Status string
}

// Sessions lists the caller's sessions (an admin's: everyone's).
func (c *Client) Sessions(ctx context.Context, f SessionFilter) ([]Session, error) {
	q := url.Values{}
	if f.Type != "" {
		q.Set("type", f.Type)
	}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	out := []Session{}
	if err := c.Get(ctx, withQuery("/api/v1/session", q), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Session returns one session; an unknown id is an *APIError with Status 404.
func (c *Client) Session(ctx context.Context, id string) (Session, error) {
	var s Session
	p, err := sessionPath(id)
	if err != nil {
		return s, err
	}
	err = c.Get(ctx, p, &s)
	return s, err
}

// Launch starts a session and returns its id.
func (c *Client) Launch(ctx context.Context, r LaunchRequest) (string, error) {
	body, err := c.do(ctx, http.MethodPost, "/api/v1/session", "application/x-www-form-urlencoded",
		strings.NewReader(r.Form().Encode()))
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(body))
	if id == "" {
		return "", errors.New("berthd accepted the session but answered no id")
	}
	return id, nil
}

// Renew extends a session's expiry.
func (c *Client) Renew(ctx context.Context, id string) error {
	p, err := sessionPath(id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, p+"?action=renew", "", nil)
	return err
}

// Delete stops and removes a session.
func (c *Client) Delete(ctx context.Context, id string) error {
	p, err := sessionPath(id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodDelete, p, "", nil)
	return err
}

// SessionLogs returns a session's container output.
func (c *Client) SessionLogs(ctx context.Context, id string) (string, error) {
	return c.sessionView(ctx, id, "logs")
}

// SessionEvents returns a session's events table, or "<none>".
func (c *Client) SessionEvents(ctx context.Context, id string) (string, error) {
	return c.sessionView(ctx, id, "events")
}

func (c *Client) sessionView(ctx context.Context, id, view string) (string, error) {
	p, err := sessionPath(id)
	if err != nil {
		return "", err
	}
	b, err := c.do(ctx, http.MethodGet, p+"?view="+view, "", nil)
	return string(b), err
}

// Images lists the launchable images, of one type unless typ is "".
func (c *Client) Images(ctx context.Context, typ string) ([]Image, error) {
	out := []Image{}
	if err := c.Get(ctx, withQuery("/api/v1/image", typeQuery(typ)), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Menu returns the catalog as the Astro Software menu: project → images.
func (c *Client) Menu(ctx context.Context, typ string) ([]MenuProject, error) {
	out := []MenuProject{}
	if err := c.Get(ctx, withQuery("/api/v1/menu", typeQuery(typ)), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Context returns the resources a session may ask for.
func (c *Client) Context(ctx context.Context) (Context, error) {
	var out Context
	err := c.Get(ctx, "/api/v1/context", &out)
	return out, err
}

// Repositories lists the registry hosts berthd launches images from.
func (c *Client) Repositories(ctx context.Context) ([]string, error) {
	out := []string{}
	if err := c.Get(ctx, "/api/v1/repository", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Profiles lists the admin-defined profiles.
func (c *Client) Profiles(ctx context.Context) ([]Profile, error) {
	out := []Profile{}
	if err := c.Get(ctx, "/api/v1/profiles", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Registries lists the stored registry credentials (never their passwords).
func (c *Client) Registries(ctx context.Context) ([]Registry, error) {
	out := []Registry{}
	if err := c.Get(ctx, "/api/v1/registries", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RegistryCredential is the body of PUT /api/v1/registries/{name}.
type RegistryCredential struct {
	Server   string `json:"server"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// PutRegistry stores (or replaces) the credential called name.
func (c *Client) PutRegistry(ctx context.Context, name string, cred RegistryCredential) error {
	if name == "" {
		return errors.New("registry name is empty")
	}
	b, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPut, "/api/v1/registries/"+url.PathEscape(name), "application/json", bytes.NewReader(b))
	return err
}

// DeleteRegistry removes the credential called name.
func (c *Client) DeleteRegistry(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("registry name is empty")
	}
	_, err := c.do(ctx, http.MethodDelete, "/api/v1/registries/"+url.PathEscape(name), "", nil)
	return err
}

// ActivateNuvla asks berthd to activate this box against a control plane;
// it answers at once with the status, and the activation goes on (watch
// Status). Only admins may.
func (c *Client) ActivateNuvla(ctx context.Context, a Activation) (Status, error) {
	var st Status
	b, err := json.Marshal(a)
	if err != nil {
		return st, err
	}
	body, err := c.do(ctx, http.MethodPost, "/api/v1/nuvla", "application/json", bytes.NewReader(b))
	if err != nil {
		return st, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("decoding the answer to POST /api/v1/nuvla: %w", err)
	}
	return st, nil
}

// ErrEventsEnded is returned by Events when berthd closes the stream (it
// shuts down, or dropped a client too slow to keep up): reconnect.
var ErrEventsEnded = errors.New("berthd ended the event stream")

// Events reads GET /api/v1/events and calls fn with each event whose type
// is in types (every event when types is empty). An Event's Data is the
// raw JSON (a json.RawMessage); decode it with Event.Decode. Events returns
// when ctx ends (ctx.Err()), when fn returns an error (that error), or when
// the stream ends (ErrEventsEnded, or the read error).
func (c *Client) Events(ctx context.Context, types []string, fn func(Event) error) error {
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/events", "", nil)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return apiError(resp.StatusCode, b)
	}
	err = ReadEvents(resp.Body, func(e Event) error {
		if len(types) > 0 && !slices.Contains(types, e.Type) {
			return nil
		}
		return fn(e)
	})
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return err
}

// maxEventLine bounds one line of the event stream.
const maxEventLine = 4 << 20

// ReadEvents parses a Server-Sent Events stream as berthd writes it and
// calls fn for each event. Comments and "retry:" lines are skipped; a
// multi-line data field is joined with newlines, as the SSE standard says.
// The event's type comes from the "event:" field (default "message"); its
// data is berthd's client.Event JSON, or, when the data is not that JSON,
// the data itself. A "dropped" event ends the stream with ErrEventsEnded.
func ReadEvents(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	var typ string
	var data []string
	dispatch := func() error {
		defer func() { typ, data = "", nil }()
		if len(data) == 0 {
			return nil
		}
		if typ == "" {
			typ = "message"
		}
		if typ == "dropped" {
			return ErrEventsEnded
		}
		raw := []byte(strings.Join(data, "\n"))
		e := Event{Type: typ, Data: json.RawMessage(raw)}
		var env struct {
			Type string          `json:"type"`
			Time time.Time       `json:"time"`
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(raw, &env) == nil && env.Data != nil {
			e.Time = env.Time
			e.Data = env.Data
		}
		return fn(e)
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if err := dispatch(); err != nil {
				return err
			}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			typ = value
		case "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the event stream: %w", err)
	}
	return ErrEventsEnded
}

// Decode unmarshals the event's data into v (for example a *PullProgress
// for a "pull" event). Data read by Events is raw JSON; other values are
// re-encoded first.
func (e Event) Decode(v any) error {
	var raw []byte
	switch d := e.Data.(type) {
	case json.RawMessage:
		raw = d
	case []byte:
		raw = d
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		raw = b
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decoding a %q event: %w", e.Type, err)
	}
	return nil
}

func sessionPath(id string) (string, error) {
	if id == "" {
		return "", errors.New("session id is empty")
	}
	return "/api/v1/session/" + url.PathEscape(id), nil
}

func typeQuery(typ string) url.Values {
	q := url.Values{}
	if typ != "" {
		q.Set("type", typ)
	}
	return q
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}
