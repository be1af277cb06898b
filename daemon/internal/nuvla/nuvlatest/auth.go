package nuvlatest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// cookieName is the name the current api-server uses; clients must treat
// the cookie as opaque.
const cookieName = "com.com.sixsq.nuvla.cookie"

const sessionTTL = 7 * 24 * time.Hour

// secretAlphabet is the alphabet of key_utils.clj.
const secretAlphabet = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"

// newSecret returns 5 groups of 6 characters joined by dots.
func newSecret() string {
	groups := make([]string, 5)
	n := big.NewInt(int64(len(secretAlphabet)))
	for g := range groups {
		b := make([]byte, 6)
		for i := range b {
			k, _ := rand.Int(rand.Reader, n) // crypto/rand does not fail since Go 1.24
			b[i] = secretAlphabet[k.Int64()]
		}
		groups[g] = string(b)
	}
	return strings.Join(groups, ".")
}

func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256$" + hex.EncodeToString(sum[:])
}

func secretMatches(cred map[string]any, secret string) bool {
	want := []byte(str(cred["digest"]))
	got := []byte(digest(secret))
	return len(want) > 0 && subtle.ConstantTimeCompare(want, got) == 1
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// authenticate finds who is calling: a session cookie, else the
// nuvla-authn-info header ("<user-id> <active-claim> <claims...>"), else
// anonymous.
func (s *Server) authenticate(r *http.Request) *authn {
	for _, ck := range r.Cookies() {
		if ck.Name != cookieName {
			continue
		}
		sid, ok := s.tokens[ck.Value]
		if !ok {
			continue
		}
		sess, ok := s.st.get(sid)
		if !ok {
			continue
		}
		if exp, ok := parseTime(str(sess["expiry"])); ok && exp.Before(s.now()) {
			continue
		}
		a := newAuthn(str(sess["user"]), str(sess["active-claim"]), strings.Fields(str(sess["roles"]))...)
		a.session = sid
		a.claims[sid] = true
		return a
	}
	if h := strings.Fields(r.Header.Get("nuvla-authn-info")); len(h) > 0 {
		active := h[0]
		if len(h) > 1 {
			active = h[1]
		}
		return newAuthn(h[0], active, h...)
	}
	return anonymous()
}

// login implements POST /api/session with the api-key template.
func (s *Server) login(c *call) (*reply, error) {
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	tpl := mapOf(body["template"])
	if href := str(tpl["href"]); href != "session-template/api-key" {
		return nil, errBadRequest("unsupported session template %q", href)
	}
	key, secret := str(tpl["key"]), str(tpl["secret"])
	if key == "" || secret == "" {
		return nil, errBadRequest("request body does not satisfy defined schema: key and secret are required")
	}
	if !strings.HasPrefix(key, "credential/") {
		key = "credential/" + key
	}
	cred, ok := s.st.get(key)
	if !ok || str(cred["subtype"]) != "api-key" || !secretMatches(cred, secret) {
		return nil, errUnauthorized(key)
	}
	if exp, ok := parseTime(str(cred["expiry"])); ok && exp.Before(s.now()) {
		return nil, errUnauthorized(key)
	}
	claims := mapOf(cred["claims"])
	identity := str(claims["identity"])
	roles := strList(claims["roles"])
	sid := "session/" + newUUID()
	now := s.now()
	doc := map[string]any{
		"id":            sid,
		"resource-type": "session",
		"created":       fmtTime(now),
		"updated":       fmtTime(now),
		"created-by":    identity,
		"method":        "api-key",
		"template":      map[string]any{"href": "session-template/api-key"},
		"identifier":    identity,
		"user":          identity,
		"active-claim":  identity,
		"roles":         strings.Join(append([]string{identity, sid}, roles...), " "),
		"expiry":        fmtTime(now.Add(sessionTTL)),
		"acl":           acl("edit-meta", sid, "view-data", sid, "delete", sid),
	}
	token := newToken()
	s.save(doc)
	s.tokens[token] = sid
	rep := created(sid, nil)
	rep.cookies = []*http.Cookie{{
		Name:     cookieName,
		Value:    token,
		Path:     "/",
		HttpOnly: true,
		Expires:  now.Add(sessionTTL),
		MaxAge:   int(sessionTTL / time.Second),
	}}
	return rep, nil
}

// dropSession forgets every cookie of a session.
func (s *Server) dropSession(sid string) {
	for tok, id := range s.tokens {
		if id == sid {
			delete(s.tokens, tok)
		}
	}
}

// ExpireSessions invalidates every session cookie, as if they had expired:
// the next call of every client gets 403 and must log in again.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, sid := range s.tokens {
		s.st.del(sid)
		delete(s.tokens, tok)
	}
	s.bump()
}

// newAPIKey creates an api-key credential for identity and returns its id
// and secret. The secret is only ever returned here.
func (s *Server) newAPIKey(identity, parent, name string, roles []string, aclDoc map[string]any, by *authn) (string, string) {
	secret := newSecret()
	fields := map[string]any{
		"subtype": "api-key",
		"method":  "generate-api-key",
		"name":    name,
		"claims":  map[string]any{"identity": identity, "roles": roles},
		"digest":  digest(secret),
		"acl":     aclDoc,
	}
	if parent != "" {
		fields["parent"] = parent
	}
	doc := s.newDoc("credential", fields, by)
	s.save(doc)
	return str(doc["id"]), secret
}
