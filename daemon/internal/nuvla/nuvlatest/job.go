package nuvlatest

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"
)

var jobStates = []string{"QUEUED", "RUNNING", "SUCCESS", "FAILED", "CANCELED"}

func isFinalJobState(state string) bool {
	return state == "SUCCESS" || state == "FAILED" || state == "CANCELED"
}

const statusMessageLimit = 100000

// jobSpec describes a job to create.
type jobSpec struct {
	target   string
	action   string
	mode     string // push, pull or mixed; default pull
	priority int
	payload  any // nil, a JSON string, or a value to encode as one
	affected []string
	box      string // nuvlabox given edit-data/manage; derived from target if empty
	version  int    // 0 means 2
}

// createJob stores a QUEUED job shaped like the api-server's.
func (s *Server) createJob(spec jobSpec, by *authn) string {
	if spec.mode == "" {
		spec.mode = "pull"
	}
	if spec.version == 0 {
		spec.version = 2
	}
	if spec.box == "" {
		spec.box = s.boxOf(spec.target)
	}
	affected := []any{map[string]any{"href": spec.target}}
	for _, a := range spec.affected {
		if a != "" && a != spec.target {
			affected = append(affected, map[string]any{"href": a})
		}
	}
	fields := map[string]any{
		"action":             spec.action,
		"state":              "QUEUED",
		"progress":           0,
		"version":            spec.version,
		"execution-mode":     spec.mode,
		"priority":           spec.priority,
		"target-resource":    map[string]any{"href": spec.target},
		"affected-resources": affected,
		"acl": acl("owners", Admin, "edit-data", spec.box, "manage", spec.box,
			"view-data", by.active, "manage", by.active),
	}
	if p, ok := encodePayload(spec.payload); ok {
		fields["payload"] = p
	}
	doc := s.newDoc("job", fields, by)
	s.save(doc)
	return str(doc["id"])
}

func encodePayload(p any) (string, bool) {
	switch v := p.(type) {
	case nil:
		return "", false
	case string:
		return v, true
	}
	b, err := jsonMarshal(p)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// boxOf finds the nuvlabox a target belongs to.
func (s *Server) boxOf(target string) string {
	switch typeOf(target) {
	case "nuvlabox":
		return target
	case "deployment":
		d, _ := s.st.get(target)
		return str(d["nuvlabox"])
	case "resource-log":
		l, _ := s.st.get(target)
		return s.boxOf(str(l["parent"]))
	}
	return ""
}

// jobsForBox is the job query of heartbeat and status responses: pull jobs
// not in a final state whose target is the box, one of its deployments or
// one of its resource-logs, oldest first.
func (s *Server) jobsForBox(nbID string) []any {
	var jobs []map[string]any
	for _, j := range s.st.ofType("job") {
		if str(j["execution-mode"]) != "pull" || isFinalJobState(str(j["state"])) {
			continue
		}
		if s.boxOf(str(mapOf(j["target-resource"])["href"])) != nbID {
			continue
		}
		jobs = append(jobs, j)
	}
	sort.SliceStable(jobs, func(a, b int) bool { return str(jobs[a]["created"]) < str(jobs[b]["created"]) })
	ids := make([]any, 0, len(jobs))
	for _, j := range jobs {
		ids = append(ids, j["id"])
	}
	return ids
}

var jobEditRules = editRules{
	allow: []string{"state", "progress", "status-message", "return-code"},
	check: func(s *Server, c *call, doc map[string]any) error {
		if isFinalJobState(str(doc["state"])) {
			return newError(http.StatusConflict, str(doc["id"]), "edit is not allowed in final state")
		}
		return nil
	},
	validate: func(s *Server, c *call, old, doc map[string]any) error {
		id := str(doc["id"])
		checks := map[string]validator{
			"state": vEnum(jobStates...), "progress": vIntRange(0, 100),
			"return-code": vInt(-1 << 31), "status-message": vString,
		}
		for _, k := range []string{"state", "progress", "return-code", "status-message"} {
			if v, ok := doc[k]; ok {
				if err := checks[k](k, v); err != nil {
					return errSchema(id, err.Error())
				}
			}
		}
		if msg := str(doc["status-message"]); msg != str(old["status-message"]) {
			if len(msg) > statusMessageLimit {
				doc["status-message"] = msg[:statusMessageLimit]
			}
			doc["time-of-status-change"] = fmtTime(s.now())
		}
		s.jobBookkeeping(old, doc)
		return nil
	},
	after: func(s *Server, c *call, old, doc map[string]any) (*reply, error) {
		if isFinalJobState(str(doc["state"])) {
			s.onJobDone(doc)
		}
		return nil, nil
	},
}

// jobBookkeeping sets started, progress and duration on state changes.
func (s *Server) jobBookkeeping(old, doc map[string]any) {
	state := str(doc["state"])
	now := s.now()
	if state == "RUNNING" && doc["started"] == nil {
		doc["started"] = fmtTime(now)
	}
	if isFinalJobState(state) && !isFinalJobState(str(old["state"])) {
		doc["progress"] = 100
		start, ok := parseTime(str(doc["started"]))
		if !ok {
			start, _ = parseTime(str(doc["created"]))
		}
		doc["duration"] = int64(now.Sub(start) / time.Second)
	}
}

// onJobDone runs the on-done hook of the job's target type.
func (s *Server) onJobDone(job map[string]any) {
	target := str(mapOf(job["target-resource"])["href"])
	if str(job["action"]) == "stop_deployment" && str(job["state"]) == "SUCCESS" {
		var payload map[string]any
		if err := json.Unmarshal([]byte(str(job["payload"])), &payload); err == nil && payload["delete"] == true {
			if _, ok := s.st.get(target); ok {
				s.deleteDeploymentChildren(target)
				s.remove(target)
			}
		}
	}
}

var jobActions = map[string]actionFunc{
	"get-context": (*Server).getContext,
	"cancel":      (*Server).cancelJob,
}

func (s *Server) cancelJob(c *call, job map[string]any) (*reply, error) {
	id := str(job["id"])
	if !canManage(rights(c.who, job)) {
		return nil, errUnauthorized(id)
	}
	if isFinalJobState(str(job["state"])) {
		return nil, errNotAllowed("cancel", id)
	}
	old := clone(job)
	job["state"] = "CANCELED"
	s.jobBookkeeping(old, job)
	s.touch(job, c.who)
	s.save(job)
	target := str(mapOf(job["target-resource"])["href"])
	if strings.HasSuffix(str(job["action"]), "_deployment") && typeOf(target) == "deployment" {
		if dep, ok := s.st.get(target); ok {
			dep["state"] = "ERROR"
			s.touch(dep, adminAuthn)
			s.save(dep)
		}
	}
	return okReply(s.present(c.who, job)), nil
}

// getContext implements POST job/<J>/get-context: only a nuvlabox (or the
// admin) that can manage the job gets the resources the job needs, without
// acl and operations.
func (s *Server) getContext(c *call, job map[string]any) (*reply, error) {
	id := str(job["id"])
	if !canManage(rights(c.who, job)) || !(c.who.isBox() || c.who.admin()) {
		return nil, errUnauthorized(id)
	}
	out := map[string]any{}
	add := func(doc map[string]any, keys ...string) map[string]any {
		if doc == nil {
			return nil
		}
		if len(keys) > 0 {
			doc = selectKeys(doc, keys)
		}
		delete(doc, "acl")
		delete(doc, "operations")
		out[str(doc["id"])] = doc
		return doc
	}
	get := func(id string) map[string]any {
		if id == "" {
			return nil
		}
		d, _ := s.st.get(id)
		return d
	}
	target := str(mapOf(job["target-resource"])["href"])
	action := str(job["action"])
	switch typeOf(target) {
	case "deployment":
		switch action {
		case "start_deployment", "update_deployment", "stop_deployment",
			"deployment_state", "deployment_state_10", "deployment_state_60":
			full := action == "start_deployment" || action == "update_deployment"
			s.deploymentContext(get(target), full, add, get)
		}
	case "nuvlabox":
		switch action {
		case "nuvlabox_add_ssh_key", "nuvlabox_revoke_ssh_key":
			for _, a := range listOf(job["affected-resources"]) {
				if href := str(mapOf(a)["href"]); typeOf(href) == "credential" {
					add(get(href))
				}
			}
		case "coe_resource_actions":
			var payload map[string]any
			_ = json.Unmarshal([]byte(str(job["payload"])), &payload)
			for _, a := range listOf(payload["docker"]) {
				if cred := add(get(str(mapOf(a)["credential"]))); cred != nil {
					add(get(str(cred["parent"])))
				}
			}
		}
	case "resource-log":
		logDoc := get(target)
		switch action {
		case "fetch_nuvlabox_log":
			add(logDoc)
			add(get(str(logDoc["parent"])))
		case "fetch_deployment_log":
			s.deploymentContext(get(str(logDoc["parent"])), false, add, get)
			add(logDoc)
		}
	}
	return okReply(out), nil
}

func (s *Server) deploymentContext(dep map[string]any, full bool,
	add func(map[string]any, ...string) map[string]any, get func(string) map[string]any) {
	if dep == nil {
		return
	}
	add(dep)
	if cred := add(get(str(dep["parent"]))); cred != nil {
		add(get(str(cred["parent"])))
	}
	nb := add(get(str(dep["nuvlabox"])))
	if nb != nil {
		add(get(str(nb["nuvlabox-status"])), "id", "ip", "network")
	}
	if full {
		for _, credID := range strList(dep["registries-credentials"]) {
			if cred := add(get(credID)); cred != nil {
				add(get(str(cred["parent"])))
			}
		}
	}
}

// --- resource-log ---

var resourceLogActions = map[string]actionFunc{
	"fetch": (*Server).fetchLog,
}

func (s *Server) fetchLog(c *call, doc map[string]any) (*reply, error) {
	id := str(doc["id"])
	if !canManage(rights(c.who, doc)) {
		return nil, errUnauthorized(id)
	}
	parent := str(doc["parent"])
	action := "fetch_nuvlabox_log"
	if typeOf(parent) == "deployment" {
		action = "fetch_deployment_log"
	}
	jobID := s.createJob(jobSpec{target: id, action: action, priority: 999}, c.who)
	return accepted(id, jobID, action+" "+id+" with async "+jobID), nil
}
