package nuvlatest

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// nbActionStates says in which states each nuvlabox action is allowed
// (comment table of resources/nuvlabox.clj).
var nbActionStates = map[string][]string{
	"activate":             {"NEW"},
	"commission":           {"ACTIVATED", "COMMISSIONED"},
	"heartbeat":            {"COMMISSIONED"},
	"decommission":         {"ACTIVATED", "COMMISSIONED", "DECOMMISSIONING", "ERROR", "SUSPENDED"},
	"reboot":               {"COMMISSIONED"},
	"add-ssh-key":          {"COMMISSIONED"},
	"revoke-ssh-key":       {"COMMISSIONED"},
	"update-nuvlabox":      {"COMMISSIONED"},
	"cluster-nuvlabox":     {"COMMISSIONED"},
	"coe-resource-actions": {"COMMISSIONED"},
	"create-log":           {"COMMISSIONED"},
	"generate-new-api-key": {"ACTIVATED", "COMMISSIONED"},
	"set-offline":          {"COMMISSIONED"},
	"unsuspend":            {"SUSPENDED"},
}

var nbActionOrder = []string{
	"activate", "commission", "heartbeat", "decommission", "reboot", "add-ssh-key", "revoke-ssh-key",
	"update-nuvlabox", "cluster-nuvlabox", "coe-resource-actions", "create-log", "generate-new-api-key",
	"set-offline", "unsuspend",
}

func nuvlaboxOps(who *authn, nb map[string]any) []string {
	var out []string
	for _, a := range nbActionOrder {
		if a == "set-offline" && !who.admin() {
			continue
		}
		if a == "coe-resource-actions" && !engineAtLeast(str(nb["nuvlabox-engine-version"]), 2, 17, 0) {
			continue
		}
		if containsStr(nbActionStates[a], str(nb["state"])) {
			out = append(out, a)
		}
	}
	return out
}

var nuvlaboxEditRules = editRules{
	immutable: []string{
		"state", "online", "owner", "version", "nuvlabox-status", "infrastructure-service-group",
		"credential-api-key", "host-level-management-api-key", "capabilities", "coe-list",
		"nuvlabox-engine-version", "inferred-location",
	},
	validate: func(s *Server, c *call, old, doc map[string]any) error {
		if c.who.admin() {
			return nil
		}
		return validateIntervals(old, doc)
	},
}

// validateIntervals applies the user-edit rules to changed intervals:
// refresh-interval >= 60 (30 without NUVLA_HEARTBEAT), heartbeat >= 10.
func validateIntervals(old, doc map[string]any) error {
	minRefresh := int64(30)
	if containsStr(strList(doc["capabilities"]), "NUVLA_HEARTBEAT") {
		minRefresh = 60
	}
	for key, lo := range map[string]int64{"refresh-interval": minRefresh, "heartbeat-interval": 10} {
		v, ok := doc[key]
		if !ok || (old != nil && old[key] != nil && normalize(v) == normalize(old[key])) {
			continue
		}
		if err := vInt(lo)(key, v); err != nil {
			return errSchema(str(doc["id"]), err.Error())
		}
	}
	return nil
}

// newNuvlabox stores a nuvlabox in state NEW.
func (s *Server) newNuvlabox(fields map[string]any, owner string, by *authn) map[string]any {
	doc := s.newDoc("nuvlabox", fields, by)
	id := str(doc["id"])
	doc["state"] = "NEW"
	doc["owner"] = owner
	doc["version"] = 2
	if doc["refresh-interval"] == nil {
		doc["refresh-interval"] = 60
	}
	if doc["heartbeat-interval"] == nil {
		doc["heartbeat-interval"] = 20
	}
	doc["acl"] = acl("owners", Admin, "manage", id, "view-data", id, "edit-acl", owner)
	if vpn := str(doc["vpn-server-id"]); vpn != "" {
		aclAppend(doc, "view-acl", vpn)
	}
	s.save(doc)
	return doc
}

// addNuvlabox implements POST /api/nuvlabox by a user.
func (s *Server) addNuvlabox(c *call, body map[string]any) (*reply, error) {
	if v, ok := body["version"]; ok {
		if n, _ := asInt(v); n != 2 {
			return nil, errSchema("", "version: only version 2 is supported")
		}
	}
	for _, k := range nuvlaboxEditRules.immutable {
		if k != "version" {
			delete(body, k)
		}
	}
	if err := validateIntervals(nil, body); err != nil {
		return nil, err
	}
	doc := s.newNuvlabox(body, c.who.active, c.who)
	return created(str(doc["id"]), nil), nil
}

// activate implements POST nuvlabox/<U>/activate; it needs no credentials.
func (s *Server) activate(c *call) (*reply, error) {
	id := c.id()
	nb, ok := s.st.get(id)
	if !ok {
		return nil, errNotFound(id)
	}
	if str(nb["state"]) != "NEW" {
		return nil, errNotAllowed("activate", id)
	}
	owner := str(nb["owner"])
	status := s.newDoc("nuvlabox-status", map[string]any{
		"version": 2, "parent": id, "status": "UNKNOWN", "name": nb["name"],
		"acl": acl("owners", Admin, "edit-data", id, "view-data", owner),
	}, adminAuthn)
	if status["name"] == nil {
		delete(status, "name")
	}
	s.save(status)
	group := s.newDoc("infrastructure-service-group", map[string]any{
		"parent": id, "name": "NuvlaEdge " + str(nb["name"]),
		"acl": acl("owners", Admin, "view-acl", id, "edit-acl", owner),
	}, adminAuthn)
	s.save(group)
	key, secret := s.newAPIKey(id, id, "Generated API Key for NuvlaEdge "+str(nb["name"]),
		[]string{groupUser, groupAnon, groupNuvlabox},
		acl("owners", Admin, "view-acl", id, "edit-acl", owner), adminAuthn)
	nb["state"] = "ACTIVATED"
	nb["nuvlabox-status"] = status["id"]
	nb["infrastructure-service-group"] = group["id"]
	nb["credential-api-key"] = key
	s.touch(nb, c.who)
	s.save(nb)
	return okReply(map[string]any{"api-key": key, "secret-key": secret}), nil
}

// nbAction wraps a nuvlabox action with the manage and state checks.
func nbAction(name string, fn actionFunc) actionFunc {
	return func(s *Server, c *call, nb map[string]any) (*reply, error) {
		id := str(nb["id"])
		if !canManage(rights(c.who, nb)) {
			return nil, errUnauthorized(id)
		}
		if !containsStr(nbActionStates[name], str(nb["state"])) {
			return nil, errNotAllowed(name, id)
		}
		return fn(s, c, nb)
	}
}

var nuvlaboxActions = map[string]actionFunc{
	"commission":           nbAction("commission", (*Server).commission),
	"heartbeat":            nbAction("heartbeat", (*Server).heartbeat),
	"decommission":         nbAction("decommission", (*Server).decommissionAction),
	"reboot":               nbAction("reboot", (*Server).reboot),
	"add-ssh-key":          nbAction("add-ssh-key", (*Server).addSSHKey),
	"revoke-ssh-key":       nbAction("revoke-ssh-key", (*Server).revokeSSHKey),
	"update-nuvlabox":      nbAction("update-nuvlabox", (*Server).updateNuvlabox),
	"cluster-nuvlabox":     nbAction("cluster-nuvlabox", (*Server).clusterNuvlabox),
	"coe-resource-actions": nbAction("coe-resource-actions", (*Server).coeResourceActions),
	"create-log":           nbAction("create-log", (*Server).createLog),
	"generate-new-api-key": nbAction("generate-new-api-key", (*Server).generateNewAPIKey),
	"set-offline":          nbAction("set-offline", (*Server).setOfflineAction),
	"unsuspend":            nbAction("unsuspend", (*Server).unsuspend),
}

// heartbeat implements POST nuvlabox/<U>/heartbeat.
func (s *Server) heartbeat(c *call, nb map[string]any) (*reply, error) {
	id := str(nb["id"])
	now := s.now()
	s.setOnline(nb, true)
	if status, ok := s.st.get(str(nb["nuvlabox-status"])); ok {
		hb := intField(nb, "heartbeat-interval", 20)
		status["online-prev"] = status["online"] == true
		status["online"] = true
		status["last-heartbeat"] = fmtTime(now)
		status["next-heartbeat"] = fmtTime(now.Add(time.Duration(2*hb+10) * time.Second))
		s.save(status)
	}
	cur, _ := s.st.get(id)
	return okReply(map[string]any{"doc-last-updated": cur["updated"], "jobs": s.jobsForBox(id)}), nil
}

// setOnline sets the box's online flag without bumping updated.
func (s *Server) setOnline(nb map[string]any, online bool) {
	if nb["online"] != online {
		nb["online"] = online
		s.save(nb)
	}
}

func hasJobPull(nb map[string]any) bool {
	return containsStr(strList(nb["capabilities"]), "NUVLA_JOB_PULL")
}

// nbJob creates a job targeting the box and answers 202.
func (s *Server) nbJob(c *call, nb map[string]any, action string, payload any, affected ...string) *reply {
	id := str(nb["id"])
	mode := "push"
	if hasJobPull(nb) {
		mode = "pull"
	}
	jobID := s.createJob(jobSpec{target: id, action: action, mode: mode, priority: 999,
		payload: payload, affected: affected, box: id}, c.who)
	return accepted(id, jobID, action+" "+id+" with async "+jobID)
}

func (s *Server) reboot(c *call, nb map[string]any) (*reply, error) {
	return s.nbJob(c, nb, "reboot_nuvlabox", nil), nil
}

func (s *Server) addSSHKey(c *call, nb map[string]any) (*reply, error) {
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	credID := str(body["credential"])
	if credID == "" {
		cred := s.newDoc("credential", map[string]any{
			"subtype": "ssh-key", "method": "ssh-key",
			"public-key": generatedSSHKey(),
			"acl":        acl("owners", Admin, "view-acl", str(nb["id"]), "edit-acl", str(nb["owner"])),
		}, c.who)
		s.save(cred)
		credID = str(cred["id"])
	} else if _, ok := s.st.get(credID); !ok {
		return nil, errNotFound(credID)
	}
	return s.nbJob(c, nb, "nuvlabox_add_ssh_key", nil, credID), nil
}

func (s *Server) revokeSSHKey(c *call, nb map[string]any) (*reply, error) {
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	credID := str(body["credential"])
	if credID == "" {
		return nil, errSchema("", "credential is required")
	}
	if _, ok := s.st.get(credID); !ok {
		return nil, errNotFound(credID)
	}
	return s.nbJob(c, nb, "nuvlabox_revoke_ssh_key", nil, credID), nil
}

func (s *Server) updateNuvlabox(c *call, nb map[string]any) (*reply, error) {
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	release := str(body["nuvlabox-release"])
	if release == "" {
		return nil, errSchema("", "nuvlabox-release is required")
	}
	return s.nbJob(c, nb, "nuvlabox_update", body["payload"], release), nil
}

func (s *Server) clusterNuvlabox(c *call, nb map[string]any) (*reply, error) {
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	action := str(body["cluster-action"])
	if action == "" {
		return nil, errSchema("", "cluster-action is required")
	}
	return s.nbJob(c, nb, "nuvlabox_cluster_"+strings.ReplaceAll(action, "-", "_"), body), nil
}

func (s *Server) coeResourceActions(c *call, nb map[string]any) (*reply, error) {
	if !engineAtLeast(str(nb["nuvlabox-engine-version"]), 2, 17, 0) {
		return nil, errNotAllowed("coe-resource-actions", str(nb["id"]))
	}
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	if hasJobPull(nb) {
		return s.nbJob(c, nb, "coe_resource_actions", body), nil
	}
	return nil, errNotAllowed("coe-resource-actions", str(nb["id"]))
}

// createLog creates a resource-log of the box; POST resource-log/<L>/fetch
// then creates the fetch_nuvlabox_log job.
func (s *Server) createLog(c *call, nb map[string]any) (*reply, error) {
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	id := str(nb["id"])
	fields := map[string]any{"parent": id, "components": body["components"], "log": map[string]any{},
		"acl": acl("owners", Admin, "edit-data", id, "manage", id, "edit-acl", c.who.active)}
	for _, k := range []string{"since", "lines"} {
		if v, ok := body[k]; ok {
			fields[k] = v
		}
	}
	doc := s.newDoc("resource-log", fields, c.who)
	s.save(doc)
	return created(str(doc["id"]), nil), nil
}

func (s *Server) generateNewAPIKey(c *call, nb map[string]any) (*reply, error) {
	id := str(nb["id"])
	if old := str(nb["credential-api-key"]); old != "" {
		s.remove(old)
	}
	key, secret := s.newAPIKey(id, id, "Generated API Key for NuvlaEdge "+str(nb["name"]),
		[]string{groupUser, groupAnon, groupNuvlabox},
		acl("owners", Admin, "view-acl", id, "edit-acl", str(nb["owner"])), adminAuthn)
	nb["credential-api-key"] = key
	s.touch(nb, c.who)
	s.save(nb)
	return okReply(map[string]any{"api-key": key, "secret-key": secret}), nil
}

func (s *Server) setOfflineAction(c *call, nb map[string]any) (*reply, error) {
	if !c.who.admin() {
		return nil, errUnauthorized(str(nb["id"]))
	}
	s.setOffline(nb)
	return messageReply(http.StatusOK, "set-offline executed successfully", str(nb["id"])), nil
}

func (s *Server) unsuspend(c *call, nb map[string]any) (*reply, error) {
	nb["state"] = "COMMISSIONED"
	s.touch(nb, c.who)
	s.save(nb)
	return messageReply(http.StatusOK, "unsuspend executed successfully", str(nb["id"])), nil
}

// decommissionAction implements POST nuvlabox/<U>/decommission. The real
// server runs decommission_nuvlabox in its central job engine; nuvlatest
// completes it immediately.
func (s *Server) decommissionAction(c *call, nb map[string]any) (*reply, error) {
	id, jobID := s.decommission(nb, c.who)
	return accepted(id, jobID, "decommissioning "+id+" with async "+jobID), nil
}

func (s *Server) decommission(nb map[string]any, by *authn) (string, string) {
	id := str(nb["id"])
	nb["state"] = "DECOMMISSIONING"
	delete(nb, "coe-list")
	s.touch(nb, by)
	s.save(nb)
	jobID := s.createJob(jobSpec{target: id, action: "decommission_nuvlabox", mode: "push", priority: 50, box: id}, by)

	// What the push job does.
	if status := str(nb["nuvlabox-status"]); status != "" {
		s.remove(status)
	}
	if group := str(nb["infrastructure-service-group"]); group != "" {
		for _, svc := range s.st.ofType("infrastructure-service") {
			if str(svc["parent"]) != group {
				continue
			}
			for _, cred := range s.st.ofType("credential") {
				if str(cred["parent"]) == str(svc["id"]) {
					s.remove(str(cred["id"]))
				}
			}
			s.remove(str(svc["id"]))
		}
		s.remove(group)
	}
	for _, typ := range []string{"credential", "resource-log", "nuvlabox-peripheral"} {
		for _, d := range s.st.ofType(typ) {
			if str(d["parent"]) == id {
				s.remove(str(d["id"]))
			}
		}
	}
	nb, _ = s.st.get(id)
	nb["state"] = "DECOMMISSIONED"
	nb["online"] = false
	s.touch(nb, adminAuthn)
	s.save(nb)
	if job, ok := s.st.get(jobID); ok {
		old := clone(job)
		job["state"] = "SUCCESS"
		job["return-code"] = 0
		s.jobBookkeeping(old, job)
		s.touch(job, adminAuthn)
		s.save(job)
	}
	return id, jobID
}

// setOffline marks a box and its status offline.
func (s *Server) setOffline(nb map[string]any) {
	s.setOnline(nb, false)
	if status, ok := s.st.get(str(nb["nuvlabox-status"])); ok && status["online"] != false {
		status["online-prev"] = status["online"] == true
		status["online"] = false
		s.save(status)
	}
}

// offlineLoop does what the job distributor's nuvlabox_offline does:
// boxes whose next-heartbeat has passed go offline.
func (s *Server) offlineLoop() {
	t := time.NewTicker(s.opts.OfflineCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		s.mu.Lock()
		now := s.now()
		for _, status := range s.st.ofType("nuvlabox-status") {
			next, ok := parseTime(str(status["next-heartbeat"]))
			if status["online"] != true || !ok || !next.Before(now) {
				continue
			}
			if nb, ok := s.st.get(str(status["parent"])); ok {
				s.setOffline(nb)
			}
		}
		s.mu.Unlock()
	}
}

var semverRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// engineAtLeast compares a semver engine version; non-semver (and empty)
// versions are allowed, as on the server. A pre-release is lower than its
// release.
func engineAtLeast(v string, major, minor, patch int) bool {
	m := semverRE.FindStringSubmatch(v)
	if m == nil {
		return true
	}
	got := [3]int{}
	for i := range got {
		got[i], _ = strconv.Atoi(m[i+1])
	}
	want := [3]int{major, minor, patch}
	for i := range got {
		if got[i] != want[i] {
			return got[i] > want[i]
		}
	}
	return m[4] == ""
}
