package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/berth-edge/berth/daemon/client"
)

// Media types of the manifests the registry source reads.
const (
	mediaOCIIndex      = "application/vnd.oci.image.index.v1+json"
	mediaDockerList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaOCIManifest   = "application/vnd.oci.image.manifest.v1+json"
	mediaDockerManifst = "application/vnd.docker.distribution.manifest.v2+json"
)

// workers bounds the manifest and config fetches under way at once, per
// registry.
const workers = 4

// registrySource lists a registry through the Registry v2 API: the
// catalog, each repository's tags, and each tag's image config labels.
// Configs are cached by manifest digest (content-addressed, so they never
// change), so a refresh fetches only new or moved tags' configs.
type registrySource struct {
	mu    sync.Mutex
	types map[string][]string // manifest digest → types
}

func newRegistrySource() *registrySource {
	return &registrySource{types: map[string][]string{}}
}

// list returns every tagged image of the registry whose config has the
// berth.types label.
func (s *registrySource) list(ctx context.Context, c *regClient, host string) ([]client.Image, error) {
	repos, err := c.catalog(ctx)
	if err != nil {
		return nil, err
	}
	type job struct{ repo, tag string }
	var jobs []job
	var partial partialError
	var errs []error
	for _, repo := range repos {
		tags, err := c.tags(ctx, repo)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			partial.repos = append(partial.repos, host+"/"+repo+":")
			errs = append(errs, err)
			continue
		}
		for _, t := range tags {
			jobs = append(jobs, job{repo, t})
		}
	}

	results := make([]client.Image, len(jobs))
	jobErrs := make([]error, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := jobs[i]
				digest, types, err := s.inspect(ctx, c, j.repo, j.tag)
				if err != nil {
					jobErrs[i] = fmt.Errorf("%s:%s: %w", j.repo, j.tag, err)
					continue
				}
				results[i] = client.Image{ID: host + "/" + j.repo + ":" + j.tag, Types: types, Digest: digest}
			}
		}()
	}
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, err := range jobErrs {
		if err != nil {
			partial.ids = append(partial.ids, host+"/"+jobs[i].repo+":"+jobs[i].tag)
			errs = append(errs, err)
		}
	}

	var out []client.Image
	seen := map[string]bool{}
	for _, im := range results {
		seen[im.Digest] = true
		if len(im.Types) > 0 {
			out = append(out, im)
		}
	}
	// Forget the configs of manifests no tag points to any more (unless
	// reading some tags failed: they may still point to them).
	if len(errs) == 0 {
		s.mu.Lock()
		for d := range s.types {
			if !seen[d] {
				delete(s.types, d)
			}
		}
		s.mu.Unlock()
	}
	if len(errs) > 0 {
		partial.err = firstErrors(errs)
		return out, &partial
	}
	return out, nil
}

// firstErrors joins the first three errors and counts the others.
func firstErrors(errs []error) error {
	if len(errs) <= 3 {
		return errors.Join(errs...)
	}
	return fmt.Errorf("%w\n(and %d more)", errors.Join(errs[:3]...), len(errs)-3)
}

// inspect returns the manifest digest of repo:tag and the session types
// of its config's berth.types label.
func (s *registrySource) inspect(ctx context.Context, c *regClient, repo, tag string) (string, []string, error) {
	// A HEAD gives the digest without the manifest (and registries such as
	// Docker Hub do not count it against pull limits): enough when the
	// config of that digest was read before.
	if d, err := c.manifestDigest(ctx, repo, tag); err == nil && d != "" {
		s.mu.Lock()
		types, ok := s.types[d]
		s.mu.Unlock()
		if ok {
			return d, types, nil
		}
	}
	digest, m, err := c.manifest(ctx, repo, tag)
	if err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	types, ok := s.types[digest]
	s.mu.Unlock()
	if ok {
		return digest, types, nil
	}
	if m.isIndex() {
		d := m.pick()
		if d == "" {
			return digest, nil, nil
		}
		if _, m, err = c.manifest(ctx, repo, d); err != nil {
			return "", nil, err
		}
	}
	if m.Config.Digest == "" {
		return digest, nil, nil // not an image (a Helm chart, an artifact)
	}
	var cfg struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	if _, _, err := c.getJSON(ctx, "/v2/"+repo+"/blobs/"+m.Config.Digest, nil, pullScope(repo), &cfg); err != nil {
		return "", nil, fmt.Errorf("image config: %w", err)
	}
	types = ParseTypes(cfg.Config.Labels[TypesLabel])
	s.mu.Lock()
	s.types[digest] = types
	s.mu.Unlock()
	return digest, types, nil
}

// manifestDoc is the part of an image manifest or index berth reads.
type manifestDoc struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Manifests []struct {
		Digest   string `json:"digest"`
		Platform *struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
		} `json:"platform"`
	} `json:"manifests"`
	contentType string
}

func (m *manifestDoc) isIndex() bool {
	t := m.MediaType
	if t == "" {
		t = m.contentType
	}
	return t == mediaOCIIndex || t == mediaDockerList || (t == "" && len(m.Manifests) > 0)
}

// pick chooses the index entry for this machine (linux and this
// architecture), else the first linux one, else the first that is not an
// attestation.
func (m *manifestDoc) pick() string {
	first, linux := "", ""
	for _, e := range m.Manifests {
		p := e.Platform
		if p != nil && p.OS == "unknown" {
			continue // attestation manifests
		}
		if first == "" {
			first = e.Digest
		}
		if p != nil && p.OS == "linux" {
			if p.Architecture == runtime.GOARCH {
				return e.Digest
			}
			if linux == "" {
				linux = e.Digest
			}
		}
	}
	if linux != "" {
		return linux
	}
	return first
}

// catalog lists the registry's repositories, following the pages.
func (c *regClient) catalog(ctx context.Context) ([]string, error) {
	var repos []string
	// No n: registries reject an n above their own maximum; their default
	// page size and the Link header do.
	next := c.base.ResolveReference(&url.URL{Path: "/v2/_catalog"}).String()
	for next != "" {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		h, err := c.getURLJSON(ctx, next, "registry:catalog:*", &page)
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		repos = append(repos, page.Repositories...)
		next = nextLink(c.base, h)
	}
	slices.Sort(repos)
	return slices.Compact(repos), nil
}

// tags lists repo's tags, following the pages.
func (c *regClient) tags(ctx context.Context, repo string) ([]string, error) {
	var tags []string
	next := c.base.ResolveReference(&url.URL{Path: "/v2/" + repo + "/tags/list"}).String()
	for next != "" {
		var page struct {
			Tags []string `json:"tags"`
		}
		h, err := c.getURLJSON(ctx, next, pullScope(repo), &page)
		if err != nil {
			return nil, fmt.Errorf("list tags of %s: %w", repo, err)
		}
		tags = append(tags, page.Tags...)
		next = nextLink(c.base, h)
	}
	slices.Sort(tags)
	return slices.Compact(tags), nil
}

// manifestAccept is the Accept header of manifest requests.
var manifestAccept = strings.Join([]string{mediaOCIIndex, mediaDockerList, mediaOCIManifest, mediaDockerManifst}, ", ")

// manifestDigest asks for the digest of repo's manifest for ref with a
// HEAD request; "" when the registry does not say.
func (c *regClient) manifestDigest(ctx context.Context, repo, ref string) (string, error) {
	h := http.Header{}
	h.Set("Accept", manifestAccept)
	resp, err := c.do(ctx, http.MethodHead, c.base.Scheme+"://"+c.base.Host+"/v2/"+repo+"/manifests/"+ref, h, pullScope(repo))
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return resp.Header.Get("Docker-Content-Digest"), nil
}

// manifest fetches repo's manifest for ref (a tag or a digest) and returns
// its digest.
func (c *regClient) manifest(ctx context.Context, repo, ref string) (string, *manifestDoc, error) {
	h := http.Header{}
	h.Set("Accept", manifestAccept)
	var m manifestDoc
	rh, body, err := c.getJSON(ctx, "/v2/"+repo+"/manifests/"+ref, h, pullScope(repo), &m)
	if err != nil {
		return "", nil, fmt.Errorf("manifest: %w", err)
	}
	m.contentType, _, _ = strings.Cut(rh.Get("Content-Type"), ";")
	digest := rh.Get("Docker-Content-Digest")
	if digest == "" {
		sum := sha256.Sum256(body)
		digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	return digest, &m, nil
}

// getURLJSON is getJSON for an absolute URL (a Link header's target).
func (c *regClient) getURLJSON(ctx context.Context, rawURL, scope string, v any) (http.Header, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", c.host, err)
	}
	if u.Host != c.base.Host {
		return nil, fmt.Errorf("registry %s: a page link leads to another host (%s)", c.host, u.Host)
	}
	h, _, err := c.getJSON(ctx, u.RequestURI(), nil, scope, v)
	return h, err
}

func pullScope(repo string) string { return "repository:" + repo + ":pull" }
