package nuvlatest

import (
	"encoding/json"
	"net/http"
	"sort"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// serviceAttrs are controlled by the server and never taken from a body.
var serviceAttrs = map[string]bool{
	"id": true, "resource-type": true, "created": true, "updated": true,
	"created-by": true, "updated-by": true, "operations": true,
}

// mandatoryAttrs cannot be removed with ?select on a PUT.
var mandatoryAttrs = map[string]bool{
	"id": true, "created": true, "updated": true, "resource-type": true, "acl": true,
}

// editRules describe how a resource type is edited.
type editRules struct {
	// immutable keys are ignored for non-admins.
	immutable []string
	// alwaysImmutable keys are ignored for everyone.
	alwaysImmutable []string
	// allow, if set, are the only keys non-admins may change.
	allow []string
	// check runs before the edit (state preconditions).
	check func(s *Server, c *call, doc map[string]any) error
	// validate checks the merged document.
	validate func(s *Server, c *call, old, doc map[string]any) error
	// after runs once the document is stored; it may replace the reply.
	after func(s *Server, c *call, old, doc map[string]any) (*reply, error)
}

func rulesFor(typ string) editRules {
	switch typ {
	case "nuvlabox":
		return nuvlaboxEditRules
	case "nuvlabox-status":
		return statusEditRules
	case "job":
		return jobEditRules
	case "deployment":
		return deploymentEditRules
	case "deployment-parameter":
		return parameterEditRules
	case "credential":
		return credentialEditRules
	}
	return editRules{}
}

// newDoc fills the common attributes of a new document.
func (s *Server) newDoc(typ string, fields map[string]any, by *authn) map[string]any {
	doc := map[string]any{}
	for k, v := range fields {
		if !serviceAttrs[k] {
			doc[k] = v
		}
	}
	now := fmtTime(s.now())
	doc["id"] = typ + "/" + newUUID()
	doc["resource-type"] = typ
	doc["created"] = now
	doc["updated"] = now
	doc["created-by"] = by.user
	if doc["acl"] == nil {
		doc["acl"] = acl("owners", by.active)
	}
	return doc
}

// save stores a document and wakes up waiters.
func (s *Server) save(doc map[string]any) {
	s.st.put(doc)
	s.bump()
}

// remove deletes a document and wakes up waiters.
func (s *Server) remove(id string) bool {
	ok := s.st.del(id)
	if ok {
		s.bump()
	}
	return ok
}

// touch sets the updated timestamp and author.
func (s *Server) touch(doc map[string]any, by *authn) {
	doc["updated"] = fmtTime(s.now())
	if by != nil && by.user != "" {
		doc["updated-by"] = by.user
	}
}

// present returns a document as a caller may see it: with operations and
// restricted to viewable keys; nil if not viewable.
func (s *Server) present(who *authn, doc map[string]any) map[string]any {
	r := rights(who, doc)
	if !canView(r) {
		return nil
	}
	doc = clone(doc)
	doc["operations"] = s.operations(who, doc, r)
	return viewable(doc, r)
}

func (s *Server) serveGet(c *call) (*reply, error) {
	doc, ok := s.st.get(c.id())
	if !ok {
		return nil, errNotFound(c.id())
	}
	out := s.present(c.who, doc)
	if out == nil {
		return nil, errUnauthorized(c.id())
	}
	p, err := parseCimiParams(c.r.URL.Query())
	if err != nil {
		return nil, err
	}
	return okReply(selectKeys(out, p.selects)), nil
}

// search runs a query as who; it returns the count before paging and the
// page of viewable documents.
func (s *Server) search(who *authn, typ string, p *cimiParams) (int, []map[string]any) {
	env := &evalEnv{now: s.now()}
	var hits []map[string]any
	for _, doc := range s.st.ofType(typ) {
		if !canView(rights(who, doc)) || !p.filter.match(doc, env) {
			continue
		}
		hits = append(hits, doc)
	}
	sortDocs(hits, p.orderby)
	count := len(hits)
	var out []map[string]any
	for _, doc := range page(hits, p) {
		withOps := p.selects == nil || containsStr(p.selects, "operations")
		v := s.present(who, doc)
		if !withOps {
			delete(v, "operations")
		}
		out = append(out, selectKeys(v, p.selects))
	}
	return count, out
}

func (s *Server) serveSearch(c *call) (*reply, error) {
	values, err := c.params()
	if err != nil {
		return nil, err
	}
	p, err := parseCimiParams(values)
	if err != nil {
		return nil, err
	}
	count, docs := s.search(c.who, c.typ, p)
	resources := make([]any, 0, len(docs))
	for _, d := range docs {
		resources = append(resources, d)
	}
	body := map[string]any{
		"count":         count,
		"resource-type": c.typ + "-collection",
		"id":            c.typ,
		"resources":     resources,
	}
	if s.canAdd(c.who, c.typ) {
		body["operations"] = []any{map[string]any{"rel": "add", "href": c.typ}}
	}
	return okReply(body), nil
}

// canAdd mirrors the collection ACLs: edge-relevant collections accept
// users, the rest only admins.
func (s *Server) canAdd(who *authn, typ string) bool {
	switch typ {
	case "session":
		return true
	case "nuvlabox", "deployment", "deployment-parameter", "credential":
		return !who.anon()
	}
	return who.admin()
}

// add creates a resource from a POST body.
func (s *Server) add(c *call) (*reply, error) {
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	if !s.canAdd(c.who, c.typ) {
		return nil, errUnauthorized("")
	}
	switch c.typ {
	case "nuvlabox":
		return s.addNuvlabox(c, body)
	case "deployment":
		return s.addDeployment(c, body)
	case "deployment-parameter":
		return s.addParameter(c, body)
	case "credential":
		return s.addCredential(c, body)
	}
	doc := s.newDoc(c.typ, body, c.who)
	s.save(doc)
	return created(str(doc["id"]), nil), nil
}

// editBody returns the body of a PUT: the JSON object, or the stored
// document with the JSON patch applied.
func (s *Server) editBody(c *call, stored map[string]any) (map[string]any, error) {
	if c.mediaType() != "application/json-patch+json" {
		return c.object()
	}
	patch, err := jsonpatch.DecodePatch(c.body)
	if err != nil {
		return nil, errBadRequest("Json patch exception: %v", err)
	}
	doc, err := json.Marshal(stored)
	if err != nil {
		return nil, errBadRequest("Json patch exception: %v", err)
	}
	opts := jsonpatch.NewApplyOptions()
	opts.SupportNegativeIndices = false // like java json-patch
	out, err := patch.ApplyWithOptions(doc, opts)
	if err != nil {
		return nil, errBadRequest("Json patch exception: %v", err)
	}
	m, err := decodeObject(out)
	if err != nil {
		return nil, errBadRequest("Json patch exception: %v", err)
	}
	return m, nil
}

func (s *Server) serveEdit(c *call) (*reply, error) {
	id := c.id()
	stored, ok := s.st.get(id)
	if !ok {
		return nil, errNotFound(id)
	}
	r := rights(c.who, stored)
	if !canEdit(r) {
		return nil, errUnauthorized(id)
	}
	rules := rulesFor(c.typ)
	if rules.check != nil {
		if err := rules.check(s, c, stored); err != nil {
			return nil, err
		}
	}
	body, err := s.editBody(c, stored)
	if err != nil {
		return nil, err
	}
	p, err := parseCimiParams(c.r.URL.Query())
	if err != nil {
		return nil, err
	}
	admin := c.who.admin()
	skip := func(k string) bool {
		if containsStr(rules.alwaysImmutable, k) {
			return true
		}
		if admin {
			return false
		}
		return containsStr(rules.immutable, k) || (rules.allow != nil && !containsStr(rules.allow, k))
	}
	doc := clone(stored)
	for _, k := range editableKeys(p.selects, r) {
		if !mandatoryAttrs[k] && !skip(k) {
			delete(doc, k)
		}
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		if !serviceAttrs[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range editableKeys(keys, r) {
		if !skip(k) {
			doc[k] = body[k]
		}
	}
	s.touch(doc, c.who)
	if rules.validate != nil {
		if err := rules.validate(s, c, stored, doc); err != nil {
			return nil, err
		}
	}
	s.save(doc)
	if rules.after != nil {
		rep, err := rules.after(s, c, stored, doc)
		if err != nil || rep != nil {
			return rep, err
		}
		if cur, ok := s.st.get(id); ok {
			doc = cur
		}
	}
	return okReply(s.present(c.who, doc)), nil
}

func (s *Server) serveDelete(c *call) (*reply, error) {
	id := c.id()
	doc, ok := s.st.get(id)
	if !ok {
		return nil, errNotFound(id)
	}
	if !canDelete(rights(c.who, doc)) {
		return nil, errUnauthorized(id)
	}
	var rep *reply
	switch c.typ {
	case "nuvlabox":
		if !containsStr([]string{"NEW", "DECOMMISSIONED", "ERROR"}, str(doc["state"])) {
			return nil, errNotAllowed("delete", id)
		}
	case "deployment":
		if !containsStr([]string{"CREATED", "STOPPED"}, str(doc["state"])) {
			return nil, errNotAllowed("delete", id)
		}
		s.deleteDeploymentChildren(id)
	case "session":
		s.dropSession(id)
		rep = messageReply(http.StatusOK, id+" deleted", id)
		rep.cookies = []*http.Cookie{{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true}}
	}
	s.remove(id)
	if rep == nil {
		rep = messageReply(http.StatusOK, id+" deleted", id)
	}
	return rep, nil
}

// operations lists what a caller can do with a document.
func (s *Server) operations(who *authn, doc map[string]any, r int) []any {
	id := str(doc["id"])
	var ops []any
	add := func(rel, href string) {
		ops = append(ops, map[string]any{"rel": rel, "href": href})
	}
	if canEdit(r) {
		add("edit", id)
	}
	if canDelete(r) && deletable(doc) {
		add("delete", id)
	}
	if canManage(r) {
		for _, a := range actionsFor(who, doc) {
			add(a, id+"/"+a)
		}
	}
	if ops == nil {
		return []any{}
	}
	return ops
}

func deletable(doc map[string]any) bool {
	state := str(doc["state"])
	switch typeOf(str(doc["id"])) {
	case "nuvlabox":
		return containsStr([]string{"NEW", "DECOMMISSIONED", "ERROR"}, state)
	case "deployment":
		return containsStr([]string{"CREATED", "STOPPED"}, state)
	}
	return true
}

// actionsFor lists the actions available in the document's current state.
func actionsFor(who *authn, doc map[string]any) []string {
	state := str(doc["state"])
	switch typeOf(str(doc["id"])) {
	case "nuvlabox":
		return nuvlaboxOps(who, doc)
	case "deployment":
		var out []string
		if containsStr([]string{"CREATED", "STOPPED"}, state) {
			out = append(out, "start")
		}
		if containsStr(stopStates, state) {
			out = append(out, "stop")
		}
		if containsStr([]string{"STARTED", "ERROR"}, state) {
			out = append(out, "update")
		}
		if containsStr(logStates, state) {
			out = append(out, "create-log")
		}
		return out
	case "job":
		out := []string{"get-context"}
		if !isFinalJobState(state) {
			out = append([]string{"cancel"}, out...)
		}
		return out
	case "resource-log":
		return []string{"fetch"}
	}
	return nil
}
