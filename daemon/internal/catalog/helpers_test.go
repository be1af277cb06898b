package catalog

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/berth-edge/berth/daemon/internal/store"
)

// pusher writes images into a registry through the Registry v2 HTTP API
// (blob uploads and manifest PUTs), as docker push does, with Basic
// credentials.
type pusher struct {
	t          testing.TB
	base       string // http://host:port
	user, pass string
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (p *pusher) do(method, rawURL, contentType string, body []byte, want int) *http.Response {
	p.t.Helper()
	req, err := http.NewRequestWithContext(p.t.Context(), method, rawURL, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.SetBasicAuth(p.user, p.pass)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		p.t.Fatalf("%s %s: %d %s, want %d", method, rawURL, resp.StatusCode, msg, want)
	}
	return resp
}

// blob uploads b to repo (monolithic upload) and returns its digest.
func (p *pusher) blob(repo string, b []byte) string {
	p.t.Helper()
	d := digestOf(b)
	resp := p.do(http.MethodPost, p.base+"/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		p.t.Fatal(err)
	}
	base, _ := url.Parse(p.base)
	loc = base.ResolveReference(loc)
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	p.do(http.MethodPut, loc.String(), "application/octet-stream", b, http.StatusCreated)
	return d
}

// manifest puts a manifest under ref (a tag or a digest) and returns its
// digest.
// An empty ref puts it by its digest (untagged).
func (p *pusher) manifest(repo, ref, mediaType string, m any) string {
	p.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		p.t.Fatal(err)
	}
	if ref == "" {
		ref = digestOf(b)
	}
	p.do(http.MethodPut, p.base+"/v2/"+repo+"/manifests/"+ref, mediaType, b, http.StatusCreated)
	return digestOf(b)
}

// image pushes a one-layer image with these config labels as repo:tag
// (untagged when tag is "") and returns its manifest digest.
func (p *pusher) image(repo, tag string, labels map[string]string) string {
	p.t.Helper()
	layer := make([]byte, 64)
	_, _ = rand.Read(layer)
	layerDigest := p.blob(repo, layer)
	cfg, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Labels": labels},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	cfgDigest := p.blob(repo, cfg)
	return p.manifest(repo, tag, mediaDockerManifst, map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaDockerManifst,
		"config":        map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(cfg), "digest": cfgDigest},
		"layers": []any{map[string]any{
			"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": layerDigest,
		}},
	})
}

// index pushes an OCI index as repo:tag whose entry for this machine is an
// image with these labels, beside another architecture's unlabelled image
// and an attestation-like entry; it returns the index digest.
func (p *pusher) index(repo, tag string, labels map[string]string) string {
	p.t.Helper()
	mine := p.image(repo, "", labels)
	other := p.image(repo, "", nil)
	otherArch := "s390x"
	if runtime.GOARCH == otherArch {
		otherArch = "arm64"
	}
	entry := func(d, os, arch string) map[string]any {
		return map[string]any{
			"mediaType": mediaDockerManifst, "digest": d, "size": 1,
			"platform": map[string]any{"os": os, "architecture": arch},
		}
	}
	return p.manifest(repo, tag, mediaOCIIndex, map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaOCIIndex,
		"manifests": []any{
			entry(other, "linux", otherArch),
			entry(other, "unknown", "unknown"),
			entry(mine, "linux", runtime.GOARCH),
		},
	})
}

// openStore opens a real state file in the test's directory.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
