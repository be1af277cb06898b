package nuvla

import (
	"crypto/md5"
	"fmt"
)

// ParameterID returns the deterministic id Nuvla gives a deployment-parameter:
// "deployment-parameter/" + a name-based UUID (version 3) of
// "<parent>:<node-id>:<name>", computed like Java's UUID.nameUUIDFromBytes,
// which hashes the bytes alone with no namespace prepended.
//
// Knowing the id lets a client edit a parameter without searching for it.
func ParameterID(parent, nodeID, name string) string {
	b := md5.Sum([]byte(parent + ":" + nodeID + ":" + name))
	b[6] = (b[6] & 0x0f) | 0x30 // version 3
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 4122 variant
	return fmt.Sprintf("deployment-parameter/%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
