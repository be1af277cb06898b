package nuvlatest

import (
	"strings"

	"github.com/berth-edge/berth/daemon/internal/nuvla"
)

// parameterSchema is the closed schema of deployment-parameter.
var parameterSchema = func() map[string]validator {
	f := commonAttrs()
	f["parent"] = vPrefix("deployment/")
	f["name"] = vNonBlank
	f["node-id"] = vString
	f["value"] = func(path string, v any) error {
		if v == nil {
			return nil
		}
		return vString(path, v)
	}
	return f
}()

func validateParameter(doc map[string]any) error {
	return closedDoc(doc, parameterSchema, "id", "resource-type", "created", "updated", "acl", "parent", "name")
}

var parameterEditRules = editRules{
	alwaysImmutable: []string{"parent", "name", "node-id"},
	allow:           []string{"value", "description"},
	validate: func(s *Server, c *call, old, doc map[string]any) error {
		if err := validateParameter(doc); err != nil {
			return errSchema(str(doc["id"]), err.Error())
		}
		return nil
	},
}

// addParameter implements POST /api/deployment-parameter: the id is the
// uuid3 of parent:node-id:name, a duplicate is a 409, and the caller must
// be able to view the parent deployment, which gets edit-acl.
func (s *Server) addParameter(c *call, body map[string]any) (*reply, error) {
	for k := range body {
		if serviceAttrs[k] {
			delete(body, k)
		}
	}
	parent, name := str(body["parent"]), str(body["name"])
	if !strings.HasPrefix(parent, "deployment/") || strings.TrimSpace(name) == "" {
		return nil, errSchema("", "parent (deployment/...) and name are required")
	}
	dep, ok := s.st.get(parent)
	if !ok {
		return nil, errNotFound(parent)
	}
	if !canView(rights(c.who, dep)) {
		return nil, errUnauthorized(parent)
	}
	id := nuvla.ParameterID(parent, str(body["node-id"]), name)
	if _, exists := s.st.get(id); exists {
		return nil, errConflict(id)
	}
	doc := s.newDoc("deployment-parameter", body, c.who)
	doc["id"] = id
	aclAppend(doc, "edit-acl", parent)
	if err := validateParameter(doc); err != nil {
		return nil, errSchema(id, err.Error())
	}
	s.save(doc)
	return created(id, nil), nil
}
