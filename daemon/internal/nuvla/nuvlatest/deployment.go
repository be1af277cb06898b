package nuvlatest

import (
	"net/http"
	"strings"
)

var deploymentStates = []string{
	"CREATED", "PENDING", "STARTING", "STARTED", "UPDATING", "UPDATED", "STOPPING", "STOPPED", "ERROR",
	"PAUSING", "PAUSED", "SUSPENDING", "SUSPENDED",
}

var stopStates = []string{"PENDING", "STARTING", "UPDATING", "STARTED", "ERROR"}

var deploymentEditRules = editRules{
	immutable: []string{"owner", "api-credentials", "nuvlabox", "infrastructure-service", "api-endpoint", "execution-mode"},
	validate: func(s *Server, c *call, old, doc map[string]any) error {
		if err := vEnum(deploymentStates...)("state", doc["state"]); err != nil {
			return errSchema(str(doc["id"]), err.Error())
		}
		if err := vMap(nil, "content")("module", doc["module"]); err != nil {
			return errSchema(str(doc["id"]), err.Error())
		}
		return nil
	},
}

// createDeployment stores a deployment in state CREATED targeting the
// infrastructure credential parent (may be empty) on box nbID.
func (s *Server) createDeployment(module map[string]any, parent, nbID string, by *authn) map[string]any {
	mode := "push"
	if nbID != "" {
		mode = "mixed"
		if nb, ok := s.st.get(nbID); ok && containsStr(strList(nb["capabilities"]), "NUVLA_JOB_PULL") {
			mode = "pull"
		}
	}
	fields := map[string]any{
		"module":         module,
		"state":          "CREATED",
		"api-endpoint":   s.url,
		"execution-mode": mode,
		"owner":          by.active,
	}
	doc := s.newDoc("deployment", fields, by)
	id := str(doc["id"])
	doc["acl"] = acl("owners", by.active, "view-acl", id, "edit-data", id, "edit-data", nbID)
	s.linkDeployment(doc, parent, nbID)
	s.save(doc)
	return doc
}

// linkDeployment denormalises the parent credential, its service and box.
func (s *Server) linkDeployment(doc map[string]any, parent, nbID string) {
	if parent != "" {
		doc["parent"] = parent
		if cred, ok := s.st.get(parent); ok {
			doc["credential-name"] = cred["name"]
			if svc, ok := s.st.get(str(cred["parent"])); ok {
				doc["infrastructure-service"] = svc["id"]
				doc["infrastructure-service-name"] = svc["name"]
			}
		}
	}
	if nbID != "" {
		doc["nuvlabox"] = nbID
		if nb, ok := s.st.get(nbID); ok {
			doc["nuvlabox-name"] = nb["name"]
		}
	}
}

// boxOfCredential follows credential -> infrastructure-service -> group ->
// nuvlabox, like infra->nb-id.
func (s *Server) boxOfCredential(credID string) string {
	cred, _ := s.st.get(credID)
	svc, _ := s.st.get(str(cred["parent"]))
	group, _ := s.st.get(str(svc["parent"]))
	if p := str(group["parent"]); strings.HasPrefix(p, "nuvlabox/") {
		return p
	}
	return ""
}

// addDeployment implements POST /api/deployment with an inline, resolved
// module ({"module":{"subtype":..,"content":{..}}, "parent":"credential/.."}).
func (s *Server) addDeployment(c *call, body map[string]any) (*reply, error) {
	module := mapOf(body["module"])
	if module == nil || mapOf(module["content"]) == nil {
		return nil, errBadRequest("module with content is required (modules are not resolved by nuvlatest)")
	}
	parent := str(body["parent"])
	nbID := ""
	if parent != "" {
		cred, ok := s.st.get(parent)
		if !ok {
			return nil, errBadRequest("requested href not found: %s", parent)
		}
		if !canView(rights(c.who, cred)) {
			return nil, errBadRequest("requested href cannot be accessed: %s", parent)
		}
		nbID = s.boxOfCredential(parent)
	}
	doc := s.createDeployment(module, parent, nbID, c.who)
	for _, k := range []string{"name", "description", "tags", "data", "registries-credentials"} {
		if v, ok := body[k]; ok {
			doc[k] = v
		}
	}
	if m := str(body["execution-mode"]); m != "" {
		doc["execution-mode"] = m
	}
	s.save(doc)
	return created(str(doc["id"]), nil), nil
}

var deploymentActions = map[string]actionFunc{
	"start":  (*Server).startAction,
	"stop":   (*Server).stopAction,
	"update": (*Server).updateAction,
	// create-log is in resourcelog.go.
	"create-log": (*Server).createDeploymentLog,
}

func (s *Server) startAction(c *call, dep map[string]any) (*reply, error) {
	return s.deploymentJob(c.who, dep, "start", nil)
}

func (s *Server) stopAction(c *call, dep map[string]any) (*reply, error) {
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	payload := map[string]any{}
	for _, k := range []string{"delete", "remove-volumes", "remove-images"} {
		if v, ok := body[k]; ok {
			payload[k] = v
		}
	}
	return s.deploymentJob(c.who, dep, "stop", payload)
}

func (s *Server) updateAction(c *call, dep map[string]any) (*reply, error) {
	return s.deploymentJob(c.who, dep, "update", nil)
}

// deploymentJob runs the start, stop and update actions of a deployment.
func (s *Server) deploymentJob(who *authn, dep map[string]any, op string, payload map[string]any) (*reply, error) {
	id := str(dep["id"])
	if !canManage(rights(who, dep)) || who.isBox() {
		return nil, errUnauthorized(id)
	}
	state := str(dep["state"])
	mode := str(dep["execution-mode"])
	var action string
	var jobPayload any
	switch op {
	case "start":
		if !containsStr([]string{"CREATED", "STOPPED"}, state) {
			return nil, errNotAllowed(op, id)
		}
		action = "start_deployment"
		key, secret := s.newAPIKey(id, id, "API credential for "+id,
			[]string{groupUser, groupAnon}, acl("owners", Admin, "edit-acl", id, "view-acl", str(dep["owner"])),
			newAuthn(id, id, groupUser))
		dep["api-credentials"] = map[string]any{"api-key": key, "api-secret": secret}
		if state == "STOPPED" {
			for _, p := range s.st.ofType("deployment-parameter") {
				if str(p["parent"]) == id {
					s.remove(str(p["id"]))
				}
			}
		}
		dep["state"] = "STARTING"
		if mode == "pull" {
			dep["state"] = "PENDING"
		}
	case "stop":
		if !containsStr(stopStates, state) {
			return nil, errNotAllowed(op, id)
		}
		action = "stop_deployment"
		dep["state"] = "STOPPING"
		if payload == nil {
			payload = map[string]any{}
		}
		jobPayload = payload
	case "update":
		if !containsStr([]string{"STARTED", "ERROR"}, state) {
			return nil, errNotAllowed(op, id)
		}
		action = "update_deployment"
		dep["state"] = "UPDATING"
	}
	s.touch(dep, who)
	s.save(dep)
	jobID := s.createJob(jobSpec{target: id, action: action, mode: mode, priority: 50,
		payload: jobPayload, box: str(dep["nuvlabox"])}, who)
	return accepted(id, jobID, action+" "+id+" with async "+jobID), nil
}

// deleteDeploymentChildren deletes the credentials, parameters and logs of a
// deployment.
func (s *Server) deleteDeploymentChildren(depID string) {
	for _, typ := range []string{"credential", "deployment-parameter", "resource-log"} {
		for _, d := range s.st.ofType(typ) {
			if str(d["parent"]) == depID {
				s.remove(str(d["id"]))
			}
		}
	}
}

// runDeploymentOp is the hook form of the deployment actions, as Owner.
func (s *Server) runDeploymentOp(depID, op string, payload map[string]any) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dep, ok := s.st.get(depID)
	if !ok {
		return "", errNotFound(depID)
	}
	owner := str(dep["owner"])
	if owner == "" {
		owner = Owner
	}
	rep, err := s.deploymentJob(newAuthn(owner, owner, groupUser), dep, op, payload)
	if err != nil {
		return "", err
	}
	if rep.status != http.StatusAccepted {
		return "", newError(rep.status, depID, "unexpected reply")
	}
	return rep.header["Location"], nil
}
