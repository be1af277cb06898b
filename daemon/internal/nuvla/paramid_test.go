package nuvla

import "testing"

// The vectors come from Java's UUID.nameUUIDFromBytes and Python's uuid3 with
// an empty namespace, as the Nuvla server computes them.
func TestParameterID(t *testing.T) {
	const dep = "deployment/0d4ec5f6-1c3c-4e35-9d2e-0a6f7b2b3c4d"
	tests := []struct {
		parent, node, name, want string
	}{
		{dep, "", "hostname", "deployment-parameter/d4543ae7-2ea7-3123-9976-726ce25b6086"},
		{dep, "", "ip.local", "deployment-parameter/3cc9437e-cb7b-3984-812d-54e25ee435eb"},
		{dep, "web", "web.tcp.80", "deployment-parameter/638fcc5b-ecaf-3a5d-95a6-5ab3506e03bd"},
		{dep, "0d4ec5f6-1c3c-4e35-9d2e-0a6f7b2b3c4d", "tcp.80", "deployment-parameter/b65233ca-5226-33f4-a6d7-3abe7178885d"},
	}
	for _, tt := range tests {
		if got := ParameterID(tt.parent, tt.node, tt.name); got != tt.want {
			t.Errorf("ParameterID(%q, %q, %q) = %s, want %s", tt.parent, tt.node, tt.name, got, tt.want)
		}
	}
}
