package nuvlatest

import "net/http"

// commissionSchema lists every key the commission action accepts
// (wf-utils/commission); anything else is a 400.
var commissionSchema = map[string]validator{
	"capabilities":           vStrings(0),
	"swarm-endpoint":         vString,
	"swarm-client-key":       vString,
	"swarm-client-cert":      vString,
	"swarm-client-ca":        vString,
	"swarm-token-manager":    vString,
	"swarm-token-worker":     vString,
	"kubernetes-endpoint":    vString,
	"kubernetes-client-key":  vString,
	"kubernetes-client-cert": vString,
	"kubernetes-client-ca":   vString,
	"tags":                   vStrings(0),
	"minio-endpoint":         vString,
	"minio-access-key":       vString,
	"minio-secret-key":       vString,
	"vpn-csr":                vNonBlank,
	"cluster-id":             vString,
	"cluster-managers":       vStrings(0),
	"cluster-workers":        vStrings(0),
	"cluster-orchestrator":   vString,
	"cluster-worker-id":      vString,
	"ssh-keys":               vStrings(0),
	"removed":                vStrings(0),
}

// commission implements POST nuvlabox/<U>/commission.
func (s *Server) commission(c *call, nb map[string]any) (*reply, error) {
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	if err := closedDoc(body, commissionSchema); err != nil {
		return nil, newError(http.StatusBadRequest, "", "request body does not satisfy defined schema:\n"+err.Error())
	}
	id := str(nb["id"])
	group := str(nb["infrastructure-service-group"])
	owner := str(nb["owner"])
	removed := strList(body["removed"])
	has := func(k string) bool { v, ok := body[k]; return ok && v != nil }

	if has("capabilities") {
		var caps []any
		for _, c := range strList(body["capabilities"]) {
			if !containsAny(caps, c) {
				caps = append(caps, c)
			}
		}
		nb["capabilities"] = caps
	}
	if has("ssh-keys") {
		nb["ssh-keys"] = body["ssh-keys"]
	}

	svcACL := func() map[string]any { return acl("owners", Admin, "view-acl", id, "edit-acl", owner) }

	// swarm
	if has("swarm-endpoint") {
		s.upsertChild("infrastructure-service", group, "swarm",
			map[string]any{"endpoint": body["swarm-endpoint"], "name": "NuvlaEdge swarm " + str(nb["name"])}, svcACL())
	}
	swarm := s.findChild("infrastructure-service", group, "swarm")
	if swarm != nil {
		svcID := str(swarm["id"])
		if has("swarm-client-key") && has("swarm-client-cert") && has("swarm-client-ca") {
			s.upsertChild("credential", svcID, "infrastructure-service-swarm", map[string]any{
				"method": "infrastructure-service-swarm", "name": "NuvlaEdge swarm credential " + str(nb["name"]),
				"ca": body["swarm-client-ca"], "cert": body["swarm-client-cert"], "key": body["swarm-client-key"],
			}, svcACL())
		}
		for key, scope := range map[string]string{"swarm-token-manager": "MANAGER", "swarm-token-worker": "WORKER"} {
			if has(key) {
				s.upsertToken(svcID, scope, str(body[key]), svcACL())
			}
			if containsStr(removed, key) {
				if tok := s.findToken(svcID, scope); tok != nil {
					s.remove(str(tok["id"]))
				}
			}
		}
		switch {
		case str(body["cluster-id"]) != "" || str(body["cluster-worker-id"]) != "":
			swarm["swarm-enabled"] = true
		case containsStr(removed, "swarm-endpoint"):
			swarm["swarm-enabled"] = false
		case swarm["swarm-enabled"] == nil:
			swarm["swarm-enabled"] = false
		}
		s.save(swarm)
	}

	// kubernetes
	if has("kubernetes-endpoint") {
		s.upsertChild("infrastructure-service", group, "kubernetes",
			map[string]any{"endpoint": body["kubernetes-endpoint"], "name": "NuvlaEdge kubernetes " + str(nb["name"])}, svcACL())
	}
	if k8s := s.findChild("infrastructure-service", group, "kubernetes"); k8s != nil {
		if has("tags") {
			k8s["tags"] = body["tags"]
			s.save(k8s)
		}
		if has("kubernetes-client-key") && has("kubernetes-client-cert") && has("kubernetes-client-ca") {
			s.upsertChild("credential", str(k8s["id"]), "infrastructure-service-kubernetes", map[string]any{
				"method": "infrastructure-service-kubernetes",
				"ca":     body["kubernetes-client-ca"], "cert": body["kubernetes-client-cert"], "key": body["kubernetes-client-key"],
			}, svcACL())
		}
	}

	// minio
	if has("minio-endpoint") {
		s.upsertChild("infrastructure-service", group, "s3",
			map[string]any{"endpoint": body["minio-endpoint"], "name": "NuvlaEdge s3 " + str(nb["name"])}, svcACL())
	}
	if s3 := s.findChild("infrastructure-service", group, "s3"); s3 != nil && has("minio-access-key") && has("minio-secret-key") {
		s.upsertChild("credential", str(s3["id"]), "infrastructure-service-minio", map[string]any{
			"method": "infrastructure-service-minio", "access-key": body["minio-access-key"], "secret-key": body["minio-secret-key"],
		}, svcACL())
	}

	nb["state"] = "COMMISSIONED"
	nb["coe-list"] = s.coeList(group)
	s.touch(nb, c.who)
	s.save(nb)
	return messageReply(http.StatusOK, "commission executed successfully", ""), nil
}

// findChild finds the document of a type with the parent and subtype.
func (s *Server) findChild(typ, parent, subtype string) map[string]any {
	if parent == "" {
		return nil
	}
	for _, d := range s.st.ofType(typ) {
		if str(d["parent"]) == parent && str(d["subtype"]) == subtype {
			return d
		}
	}
	return nil
}

// upsertChild creates or updates the child of parent with that subtype.
func (s *Server) upsertChild(typ, parent, subtype string, fields, aclDoc map[string]any) {
	if parent == "" {
		return
	}
	doc := s.findChild(typ, parent, subtype)
	if doc == nil {
		doc = s.newDoc(typ, map[string]any{"parent": parent, "subtype": subtype, "acl": aclDoc}, adminAuthn)
	} else {
		s.touch(doc, adminAuthn)
	}
	for k, v := range fields {
		doc[k] = v
	}
	s.save(doc)
}

func (s *Server) findToken(svcID, scope string) map[string]any {
	for _, d := range s.st.ofType("credential") {
		if str(d["parent"]) == svcID && str(d["subtype"]) == "swarm-token" && str(d["scope"]) == scope {
			return d
		}
	}
	return nil
}

func (s *Server) upsertToken(svcID, scope, token string, aclDoc map[string]any) {
	doc := s.findToken(svcID, scope)
	if doc == nil {
		doc = s.newDoc("credential", map[string]any{
			"parent": svcID, "subtype": "swarm-token", "method": "swarm-token", "scope": scope, "acl": aclDoc,
		}, adminAuthn)
	} else {
		s.touch(doc, adminAuthn)
	}
	doc["token"] = token
	s.save(doc)
}

// coeList rebuilds the nuvlabox coe-list from the group's services.
func (s *Server) coeList(group string) []any {
	out := []any{}
	if svc := s.findChild("infrastructure-service", group, "swarm"); svc != nil {
		coe := "docker"
		if svc["swarm-enabled"] == true {
			coe = "swarm"
		}
		out = append(out, map[string]any{"id": svc["id"], "coe-type": coe})
	}
	if svc := s.findChild("infrastructure-service", group, "kubernetes"); svc != nil {
		out = append(out, map[string]any{"id": svc["id"], "coe-type": "kubernetes"})
	}
	return out
}
