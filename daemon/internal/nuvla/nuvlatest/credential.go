package nuvlatest

import (
	"strings"
	"time"
)

var credentialEditRules = editRules{
	immutable: []string{"subtype", "method", "digest", "claims", "parent", "expiry"},
}

// addCredential implements POST /api/credential with a template. Only
// credential-template/generate-api-key is supported.
func (s *Server) addCredential(c *call, body map[string]any) (*reply, error) {
	tpl := mapOf(body["template"])
	href := str(tpl["href"])
	if href != "credential-template/generate-api-key" {
		return nil, errBadRequest("unsupported credential template %q", href)
	}
	var roles []string
	for cl := range c.who.claims {
		if cl != c.who.active && !strings.HasPrefix(cl, "session/") {
			roles = append(roles, cl)
		}
	}
	parent := str(tpl["parent"])
	if parent == "" {
		parent = str(body["parent"])
	}
	id, secret := s.newAPIKey(c.who.user, parent, str(tpl["name"]), roles,
		acl("owners", Admin, "edit-acl", c.who.active), c.who)
	if ttl, ok := asInt(tpl["ttl"]); ok && ttl > 0 {
		doc, _ := s.st.get(id)
		doc["expiry"] = fmtTime(s.now().Add(time.Duration(ttl) * time.Second))
		s.save(doc)
	}
	return created(id, map[string]any{"secret-key": secret}), nil
}

// CreateRegistryCredential creates a registry infrastructure-service with
// the endpoint and a credential of subtype infrastructure-service-registry
// for it, owned by Owner. Reference the returned id from a deployment's
// registries-credentials list (see SetResourceField).
func (s *Server) CreateRegistryCredential(endpoint, username, password string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.newDoc("infrastructure-service", map[string]any{
		"subtype":  "registry",
		"endpoint": endpoint,
		"name":     "registry " + endpoint,
		"acl":      acl("owners", Owner),
	}, ownerAuthn)
	s.save(svc)
	cred := s.newDoc("credential", map[string]any{
		"subtype":  "infrastructure-service-registry",
		"method":   "infrastructure-service-registry",
		"parent":   svc["id"],
		"username": username,
		"password": password,
		"acl":      acl("owners", Owner),
	}, ownerAuthn)
	s.save(cred)
	return str(cred["id"])
}
