package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxBody bounds what berthd reads from a registry answer (a manifest, a
// config, a page of a listing, a token).
const maxBody = 8 << 20

// ErrUnauthorized says a registry refused the credentials (or wants some).
var ErrUnauthorized = errors.New("unauthorized")

// authError is a refusal by a registry, naming who was refused.
type authError struct {
	host, user string
	detail     string
	// noAccess: the login worked but this resource was refused.
	noAccess bool
}

func (e *authError) Error() string {
	if e.noAccess {
		return fmt.Sprintf("registry %s refused user %q access to this resource%s", e.host, e.user, e.detail)
	}
	if e.user == "" {
		return fmt.Sprintf("registry %s refused anonymous access (store a credential for it and name it in the catalog configuration)%s", e.host, e.detail)
	}
	return fmt.Sprintf("registry %s refused the credentials of user %q: wrong username or password%s", e.host, e.user, e.detail)
}

func (e *authError) Unwrap() error { return ErrUnauthorized }

// challenge is one WWW-Authenticate challenge.
type challenge struct {
	scheme string            // "basic" or "bearer", lower-cased
	params map[string]string // realm, service, scope...
}

// parseChallenges reads a WWW-Authenticate header value:
// `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`
// or `Basic realm="x"`. Several challenges may follow one another.
func parseChallenges(h string) []challenge {
	var out []challenge
	s := h
	skip := func() { s = strings.TrimLeft(s, " \t,") }
	word := func() string {
		i := strings.IndexAny(s, " \t,=")
		if i < 0 {
			i = len(s)
		}
		w := s[:i]
		s = s[i:]
		return w
	}
	for {
		skip()
		if s == "" {
			return out
		}
		scheme := word()
		if scheme == "" { // a stray "="
			s = s[1:]
			continue
		}
		c := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
		for {
			skip()
			save := s
			key := word()
			rest := strings.TrimLeft(s, " \t")
			if key == "" || !strings.HasPrefix(rest, "=") {
				s = save // the next challenge's scheme
				break
			}
			s = strings.TrimLeft(rest[1:], " \t")
			var val string
			if strings.HasPrefix(s, `"`) {
				var b strings.Builder
				j := 1
				for ; j < len(s) && s[j] != '"'; j++ {
					if s[j] == '\\' && j+1 < len(s) {
						j++
					}
					b.WriteByte(s[j])
				}
				val = b.String()
				s = s[min(j+1, len(s)):]
			} else {
				val = word()
			}
			c.params[strings.ToLower(key)] = val
		}
		out = append(out, c)
	}
}

// regClient talks to one registry's /v2/ API as one user, answering its
// Basic or Bearer challenges. Bearer tokens are cached by scope until they
// expire. It is safe for concurrent use.
type regClient struct {
	base     *url.URL // scheme://host[:port]
	host     string   // host[:port], for messages
	user     string
	password string
	http     *http.Client

	mu     sync.Mutex
	tokens map[string]token // by scope
	basic  bool             // the registry asked for Basic once
}

type token struct {
	value   string
	expires time.Time
}

func newRegClient(base *url.URL, user, password string, hc *http.Client) *regClient {
	return &regClient{base: base, host: base.Host, user: user, password: password, http: hc, tokens: map[string]token{}}
}

// get fetches path (with query) from the registry, authenticating as
// needed. scope is the Bearer scope the request needs ("" for /v2/). The
// caller closes the body of a 2xx answer; other answers become errors.
func (c *regClient) get(ctx context.Context, path string, header http.Header, scope string) (*http.Response, error) {
	return c.do(ctx, http.MethodGet, c.base.Scheme+"://"+c.base.Host+path, header, scope)
}

// do sends one GET or HEAD request, answering one 401 challenge.
func (c *regClient) do(ctx context.Context, method, rawURL string, header http.Header, scope string) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", c.host, err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		c.authorize(req, scope)
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", c.host, err)
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		body := readSome(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return nil, statusError(c.host, method, req.URL.Path, resp.StatusCode, body)
		}
		if attempt > 0 {
			c.mu.Lock()
			_, bearer := c.tokens[scope]
			c.mu.Unlock()
			return nil, &authError{host: c.host, user: c.user, detail: registryDetail(body), noAccess: bearer && c.user != ""}
		}
		if err := c.answer(ctx, resp.Header.Values("WWW-Authenticate"), scope); err != nil {
			return nil, err
		}
	}
}

// authorize adds what the registry asked for before: a cached token for
// scope, or Basic credentials.
func (c *regClient) authorize(req *http.Request, scope string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tokens[scope]; ok && time.Now().Before(t.expires) {
		req.Header.Set("Authorization", "Bearer "+t.value)
		return
	}
	if c.basic && c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
}

// answer prepares the next attempt after a 401: Basic credentials, or a
// Bearer token fetched from the challenge's realm.
func (c *regClient) answer(ctx context.Context, headers []string, scope string) error {
	var chs []challenge
	for _, h := range headers {
		chs = append(chs, parseChallenges(h)...)
	}
	for _, ch := range chs {
		if ch.scheme == "bearer" && ch.params["realm"] != "" {
			// The token is asked for the scope the challenge names (the
			// registry knows best) and kept under the request's.
			want := scope
			if s := ch.params["scope"]; s != "" {
				want = s
			}
			t, err := c.fetchToken(ctx, ch.params["realm"], ch.params["service"], want)
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.tokens[scope] = t
			c.mu.Unlock()
			return nil
		}
	}
	for _, ch := range chs {
		if ch.scheme == "basic" {
			if c.user == "" {
				return &authError{host: c.host}
			}
			c.mu.Lock()
			c.basic = true
			c.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("registry %s answered 401 without a Basic or Bearer challenge", c.host)
}

// fetchToken asks the token service for a token of scope, with the
// credentials when there are some (the Docker token protocol).
func (c *regClient) fetchToken(ctx context.Context, realm, service, scope string) (token, error) {
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return token{}, fmt.Errorf("registry %s: token realm %q is not an http(s) URL", c.host, realm)
	}
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return token{}, fmt.Errorf("registry %s: %w", c.host, err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return token{}, fmt.Errorf("registry %s: token service: %w", c.host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return token{}, fmt.Errorf("registry %s: token service: %w", c.host, err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return token{}, &authError{host: c.host, user: c.user, detail: registryDetail(body)}
	}
	if resp.StatusCode/100 != 2 {
		return token{}, fmt.Errorf("registry %s: token service %s answered %d%s", c.host, u.Host, resp.StatusCode, registryDetail(body))
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return token{}, fmt.Errorf("registry %s: token service answer: %w", c.host, err)
	}
	t := token{value: tr.Token}
	if t.value == "" {
		t.value = tr.AccessToken
	}
	if t.value == "" {
		return token{}, fmt.Errorf("registry %s: token service gave no token", c.host)
	}
	ttl := time.Duration(tr.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = 60 * time.Second // the protocol's default
	}
	// Renew a little early.
	t.expires = time.Now().Add(ttl - min(ttl/10, 10*time.Second))
	return t, nil
}

// ping checks the credentials against /v2/: nil when the registry lets
// this user in.
func (c *regClient) ping(ctx context.Context) error {
	resp, err := c.get(ctx, "/v2/", nil, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// getJSON fetches a JSON document into v and returns the answer's headers.
func (c *regClient) getJSON(ctx context.Context, path string, header http.Header, scope string, v any) (http.Header, []byte, error) {
	resp, err := c.get(ctx, path, header, scope)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("registry %s: read %s: %w", c.host, path, err)
	}
	if len(body) > maxBody {
		return nil, nil, fmt.Errorf("registry %s: %s is larger than %d bytes", c.host, path, maxBody)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return nil, nil, fmt.Errorf("registry %s: decode %s: %w", c.host, path, err)
		}
	}
	return resp.Header, body, nil
}

func readSome(r io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	return b
}

// statusError explains a non-2xx answer.
func statusError(host, method, path string, code int, body []byte) error {
	return fmt.Errorf("registry %s: %s %s answered %d %s%s", host, method, path, code, http.StatusText(code), registryDetail(body))
}

// registryDetail extracts the message of a Registry v2 error body
// ({"errors":[{"code","message"}]}, which Harbor uses too).
func registryDetail(body []byte) string {
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	var msgs []string
	for _, x := range e.Errors {
		m := x.Message
		if m == "" {
			m = x.Code
		}
		msgs = append(msgs, m)
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// nextLink returns the target of a Link header's rel="next", resolved
// against base; "" when there is none.
func nextLink(base *url.URL, h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if !strings.HasPrefix(part, "<") {
				continue
			}
			end := strings.IndexByte(part, '>')
			if end < 0 {
				continue
			}
			target, params := part[1:end], part[end+1:]
			for _, p := range strings.Split(params, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(k, "rel") && strings.Trim(v, `"`) == "next" {
					u, err := url.Parse(target)
					if err != nil {
						return ""
					}
					return base.ResolveReference(u).String()
				}
			}
		}
	}
	return ""
}
