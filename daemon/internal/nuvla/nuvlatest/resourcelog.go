package nuvlatest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
)

// logStates are the deployment states in which create-log is offered.
var logStates = []string{"STARTING", "UPDATING", "STARTED", "ERROR", "STOPPING"}

// createDeploymentLog implements POST deployment/<D>/create-log
// {components, since?, lines?}: a resource-log whose parent is the
// deployment, which the deployment's box may read and edit (its
// fetch_deployment_log job writes the lines). The components are the
// deployment's service names.
func (s *Server) createDeploymentLog(c *call, dep map[string]any) (*reply, error) {
	id := str(dep["id"])
	if !canManage(rights(c.who, dep)) || c.who.isBox() {
		return nil, errUnauthorized(id)
	}
	if !containsStr(logStates, str(dep["state"])) {
		return nil, errNotAllowed("create-log", id)
	}
	body, err := c.object()
	if err != nil {
		return nil, err
	}
	comps := strList(body["components"])
	if len(comps) == 0 {
		return nil, errSchema("", "components is required (the service names)")
	}
	box := str(dep["nuvlabox"])
	fields := map[string]any{"parent": id, "components": comps, "log": map[string]any{},
		"acl": acl("owners", Admin, "edit-data", box, "manage", box, "edit-acl", c.who.active)}
	for _, k := range []string{"since", "lines"} {
		if v, ok := body[k]; ok {
			fields[k] = v
		}
	}
	doc := s.newDoc("resource-log", fields, c.who)
	s.save(doc)
	return created(str(doc["id"]), nil), nil
}

// generatedSSHKey is the public key of a fresh ed25519 pair in OpenSSH's
// authorized_keys format, as Nuvla generates for add-ssh-key without a
// credential.
func generatedSSHKey() string {
	pub, _, _ := ed25519.GenerateKey(rand.Reader) // crypto/rand never fails
	var blob []byte
	for _, part := range [][]byte{[]byte("ssh-ed25519"), pub} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob) + " nuvlatest"
}
