package nuvlatest

// Test hooks: direct calls that act as the admin (or the owner where the
// real server would need one). They do not go through HTTP, are not logged
// in Requests and ignore injected faults.

// CreateNuvlabox creates a nuvlabox owned by Owner in state NEW, version 2,
// with the refresh and heartbeat intervals of the Options, and returns its
// id "nuvlabox/<uuid>".
func (s *Server) CreateNuvlabox(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc := s.newNuvlabox(map[string]any{
		"name":               name,
		"refresh-interval":   s.opts.RefreshInterval,
		"heartbeat-interval": s.opts.HeartbeatInterval,
	}, Owner, ownerAuthn)
	return str(doc["id"])
}

// NuvlaboxState returns the state of a nuvlabox, "" if it does not exist.
func (s *Server) NuvlaboxState(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, _ := s.st.get(id)
	return str(doc["state"])
}

// Decommission decommissions a box as its owner would: the box ends in
// DECOMMISSIONED, its status, services and api keys are deleted, so later
// logins with its key get 403.
func (s *Server) Decommission(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nb, ok := s.st.get(id); ok {
		s.decommission(nb, ownerAuthn)
	}
}

// CreateDeployment creates a deployment owned by Owner in state CREATED on
// the box, from an already resolved module document such as
// {"subtype":"application","content":{"docker-compose":"..."}}. Its parent
// is the box's infrastructure-service-swarm credential when commission has
// created one; execution-mode is pull.
func (s *Server) CreateDeployment(boxID string, module map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	parent := ""
	if nb, ok := s.st.get(boxID); ok {
		if svc := s.findChild("infrastructure-service", str(nb["infrastructure-service-group"]), "swarm"); svc != nil {
			if cred := s.findChild("credential", str(svc["id"]), "infrastructure-service-swarm"); cred != nil {
				parent = str(cred["id"])
			}
		}
	}
	doc := s.createDeployment(clone(module), parent, boxID, ownerAuthn)
	doc["execution-mode"] = "pull"
	s.save(doc)
	return str(doc["id"])
}

// StartDeployment does what POST deployment/<D>/start by the owner does and
// returns the start_deployment job id.
func (s *Server) StartDeployment(depID string) (string, error) {
	return s.runDeploymentOp(depID, "start", nil)
}

// StopDeployment does what POST deployment/<D>/stop does, with the payload
// (delete, remove-volumes, remove-images) JSON-encoded into the job.
func (s *Server) StopDeployment(depID string, payload map[string]any) (string, error) {
	return s.runDeploymentOp(depID, "stop", payload)
}

// UpdateDeployment does what POST deployment/<D>/update does.
func (s *Server) UpdateDeployment(depID string) (string, error) {
	return s.runDeploymentOp(depID, "update", nil)
}

// EnqueueJob creates an arbitrary QUEUED pull job on target. payload is nil
// (none), a string (used as is) or a value encoded to a JSON string; version
// is stored as given, so tests can create jobs of unsupported versions.
func (s *Server) EnqueueJob(target, action string, payload any, version int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	spec := jobSpec{target: target, action: action, mode: "pull", priority: 999, payload: payload, version: version}
	id := s.createJob(spec, adminAuthn)
	if version == 0 {
		doc, _ := s.st.get(id)
		doc["version"] = 0
		s.save(doc)
	}
	return id
}

// JobsFor returns the ids the next heartbeat of the box would carry.
func (s *Server) JobsFor(boxID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strList(s.jobsForBox(boxID))
}

// Resource returns a deep copy of a stored document (numbers as float64).
func (s *Server) Resource(id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, ok := s.st.get(id)
	return export(doc), ok
}

// Search runs a CIMI filter over a resource type as the admin, with the same
// engine as HTTP searches; results are in creation order. An invalid filter
// returns nil and is logged.
func (s *Server) Search(resourceType, filter string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := parseFilter(filter)
	if err != nil {
		s.log.Error("nuvlatest: invalid filter", "filter", filter, "err", err)
		return nil
	}
	_, docs := s.search(adminAuthn, resourceType, &cimiParams{filter: n, first: 1, last: maxLast})
	out := make([]map[string]any, 0, len(docs))
	for _, d := range docs {
		delete(d, "operations")
		out = append(out, export(d))
	}
	return out
}

// SetResourceField sets one top-level key of any document (nil deletes it)
// and bumps its updated timestamp. It reports whether the document exists.
func (s *Server) SetResourceField(id, key string, value any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc, ok := s.st.get(id)
	if !ok {
		return false
	}
	if value == nil {
		delete(doc, key)
	} else {
		doc[key] = normalize(value)
	}
	s.touch(doc, adminAuthn)
	s.save(doc)
	return true
}

// SetNuvlaboxField sets a field of a nuvlabox, such as heartbeat-interval,
// and bumps its updated timestamp, so the next heartbeat carries a new
// doc-last-updated.
func (s *Server) SetNuvlaboxField(id, key string, value any) {
	s.SetResourceField(id, key, value)
}

// CreateResource stores a document of any type (e.g. a nuvlabox-release)
// and returns its id. Without an "acl" field it is owned by the admin and
// readable by every user.
func (s *Server) CreateResource(resourceType string, fields map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := mapOf(normalize(fields))
	if f == nil {
		f = map[string]any{}
	}
	if f["acl"] == nil {
		f["acl"] = acl("owners", Admin, "view-data", groupUser)
	}
	doc := s.newDoc(resourceType, f, adminAuthn)
	s.save(doc)
	return str(doc["id"])
}
