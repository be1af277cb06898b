package engine

import "testing"

func TestRepoDigest(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	tests := []struct {
		tag     string
		digests []string
		want    string
	}{
		{"reg.io/p/app:1", []string{"other.io/p/app@" + d1, "reg.io/p/app@" + d2}, d2},
		{"nginx:1", []string{"nginx@" + d1}, d1},
		{"docker.io/library/nginx:1", []string{"nginx@" + d1}, d1},
		{"app:1", nil, ""},
		{"app:1", []string{"garbage"}, ""},
		{"Bad Tag", []string{"app@" + d1}, ""},
	}
	for _, tt := range tests {
		if got := repoDigest(tt.tag, tt.digests); got != tt.want {
			t.Errorf("repoDigest(%q, %v) = %q, want %q", tt.tag, tt.digests, got, tt.want)
		}
	}
}
