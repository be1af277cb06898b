// Package catalog lists the images people at the box can launch as
// sessions, skaha's GET image: local images labelled berth.types, the
// images of configured registries (the Registry v2 API, or Harbor's API
// where the artifact labels are the types), and the admin profiles. It
// keeps each source's last good listing, refreshes the registries every
// catalog.refresh and the local images when Docker's change, and keeps
// the registry credentials (stored once by name, never shown) that the
// listings and the pulls use. Its HTTP routes serve image, repository,
// menu, catalog/sources and registries.
//
// # Sources
//
// A source that fails keeps its last good listing; its error is shown by
// Sources (GET catalog/sources) and in the X-Berth-Catalog-Errors header of
// GET image. The same image listed by two sources is one entry whose types
// are the union of both; its digest and Source come from the first source
// in this order: local, then the registries in configuration order.
// Profiles are listed after, one entry each (Source "profile").
package catalog

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// TypesLabel is the image label (and, on Harbor, the label names) that
// says which session types an image serves: a comma list such as
// "notebook,headless".
const TypesLabel = "berth.types"

// Defaults.
const (
	// DefaultRefresh is how often registries are listed when Options.Refresh
	// is zero.
	DefaultRefresh = 30 * time.Minute
	// DefaultSourceTimeout bounds one source's listing.
	DefaultSourceTimeout = 2 * time.Minute
)

// Source kinds.
const (
	KindLocal    = "local"
	KindRegistry = "registry"
	KindHarbor   = "harbor"
)

// LocalImages lists the local images that carry a label; *engine.Engine
// implements it.
type LocalImages interface {
	LabelledImages(ctx context.Context, key string) ([]engine.LocalImage, error)
}

// ImageWatcher reports changes of the local image store; when Options.Local
// implements it (*engine.Engine does), Run lists the local images again on each.
type ImageWatcher interface {
	WatchImages(ctx context.Context, changed func()) error
}

// Credentials keeps the registry credentials; *store.Store implements it.
type Credentials interface {
	Registry(name string) (store.RegistryCredential, bool, error)
	Registries() ([]store.RegistryCredential, error)
	PutRegistry(c store.RegistryCredential) error
	DeleteRegistry(name string) error
}

// Options configure a Catalog.
type Options struct {
	// Local lists local images; nil leaves local images out.
	Local LocalImages
	// Credentials keeps the registry credentials (required).
	Credentials Credentials
	// Registries are config catalog.registry.
	Registries []config.CatalogRegistry
	// Refresh is how often the registries are listed (DefaultRefresh when 0).
	Refresh time.Duration
	// SourceTimeout bounds one source's listing (DefaultSourceTimeout when 0).
	SourceTimeout time.Duration
	// Profiles returns the admin profiles; nil means none.
	Profiles func() []client.Profile
	// Logger receives the catalog's log lines; nil discards them.
	Logger *slog.Logger
}

// SourceStatus is one source as GET catalog/sources shows it.
type SourceStatus struct {
	// Name is the Source of its images: "local", "registry:<name>" or
	// "harbor:<name>".
	Name string `json:"name"`
	Kind string `json:"kind"`
	URL  string `json:"url,omitempty"`
	// Error is the last listing's error; the images of the last good
	// listing are kept meanwhile.
	Error string `json:"error,omitempty"`
	// Images counts the images of the last good listing.
	Images int `json:"images"`
	// Refreshed is when the last good listing was made (RFC 3339, UTC);
	// "" if none was.
	Refreshed string `json:"refreshed,omitempty"`
	// Checked is when the source was last listed, successfully or not.
	Checked string `json:"checked,omitempty"`
}

// source is one source and its last listing.
type source struct {
	name string
	kind string
	url  *url.URL
	cfg  config.CatalogRegistry
	http *http.Client
	reg  *registrySource

	images    []client.Image
	err       error
	refreshed time.Time
	checked   time.Time
}

// Catalog is the image catalog. Its methods are safe for concurrent use.
type Catalog struct {
	opts    Options
	log     *slog.Logger
	refresh time.Duration
	timeout time.Duration

	kickLocal chan struct{}
	kickAll   chan struct{}
	changed   chan struct{}

	mu      sync.Mutex
	sources []*source // local first, then the registries in config order
	last    [sha256.Size]byte
}

// New builds a Catalog. Nothing is listed until Refresh or Run.
func New(opts Options) (*Catalog, error) {
	if opts.Credentials == nil {
		return nil, errors.New("catalog: Options.Credentials is required")
	}
	c := &Catalog{
		opts:      opts,
		log:       opts.Logger,
		refresh:   cmp.Or(opts.Refresh, DefaultRefresh),
		timeout:   cmp.Or(opts.SourceTimeout, DefaultSourceTimeout),
		kickLocal: make(chan struct{}, 1),
		kickAll:   make(chan struct{}, 1),
		changed:   make(chan struct{}, 1),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "catalog")
	if opts.Local != nil {
		c.sources = append(c.sources, &source{name: KindLocal, kind: KindLocal})
	}
	for i, r := range opts.Registries {
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("catalog: registry[%d] %q: url %q is not http(s)://host[:port]", i, r.Name, r.URL)
		}
		kind := cmp.Or(r.Kind, KindRegistry)
		if kind != KindRegistry && kind != KindHarbor {
			return nil, fmt.Errorf("catalog: registry[%d] %q: kind %q is not registry or harbor", i, r.Name, r.Kind)
		}
		c.sources = append(c.sources, &source{
			name: kind + ":" + r.Name, kind: kind, url: u, cfg: r,
			http: httpClient(r.Insecure), reg: newRegistrySource(),
		})
	}
	return c, nil
}

// httpClient is a client of one registry; insecure skips TLS verification.
func httpClient(insecure bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the admin asked for it (catalog.registry.insecure)
	}
	return &http.Client{Transport: tr}
}

// Run lists every source at once, then every source every Refresh and the
// local images whenever Docker reports an image change (when
// Options.Local is an ImageWatcher), until ctx
// ends. Its own goroutines are all done when it returns.
func (c *Catalog) Run(ctx context.Context) error {
	if w, ok := c.opts.Local.(ImageWatcher); ok {
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.WatchImages(wctx, c.localChanged); err != nil {
				c.log.Warn("watching local images stopped", "err", err)
			}
		}()
		defer func() {
			stop()
			wg.Wait()
		}()
	}
	c.Refresh(ctx)
	t := time.NewTicker(c.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.Refresh(ctx)
		case <-c.kickAll:
			c.Refresh(ctx)
		case <-c.kickLocal:
			c.RefreshLocal(ctx)
		}
	}
}

// localChanged asks Run to list the local images again (Docker's image
// events: pull, tag, untag, delete, load). It never blocks; calls close
// together make one listing.
func (c *Catalog) localChanged() {
	select {
	case c.kickLocal <- struct{}{}:
	default:
	}
}

// RefreshSoon asks Run to list every source again, without blocking.
func (c *Catalog) RefreshSoon() {
	select {
	case c.kickAll <- struct{}{}:
	default:
	}
}

// Changed receives a value when the catalog's listing changed. There is
// one channel, so it suits one consumer (berthd publishes a "catalog"
// event); changes close together may be reported once.
func (c *Catalog) Changed() <-chan struct{} { return c.changed }

// Refresh lists every source now, in parallel, and waits for them.
func (c *Catalog) Refresh(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range c.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.refreshSource(ctx, s)
		}()
	}
	wg.Wait()
	c.noteChange()
}

// RefreshLocal lists the local images now.
func (c *Catalog) RefreshLocal(ctx context.Context) {
	for _, s := range c.sources {
		if s.kind == KindLocal {
			c.refreshSource(ctx, s)
		}
	}
	c.noteChange()
}

func (c *Catalog) refreshSource(parent context.Context, s *source) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	start := time.Now()
	images, err := c.listSource(ctx, s)
	if parent.Err() != nil {
		return // shutting down: keep what there is
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("listing did not finish within %s: %w", c.timeout, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.checked = time.Now()
	var partial *partialError
	if errors.As(err, &partial) {
		// Some repositories or tags could not be read: list the rest, keep
		// the last entries of those, and show the error.
		images = append(images, partial.keep(s.images)...)
		slices.SortFunc(images, func(a, b client.Image) int { return strings.Compare(a.ID, b.ID) })
		if s.err == nil || s.err.Error() != err.Error() {
			c.log.Warn("listing a catalog source failed in part; keeping the last entries of what failed",
				"source", s.name, "err", err)
		}
		s.err = err
		s.images = images
		s.refreshed = s.checked
		return
	}
	if err != nil {
		if s.err == nil || s.err.Error() != err.Error() {
			c.log.Warn("listing a catalog source failed; keeping its last listing",
				"source", s.name, "images", len(s.images), "err", err)
		}
		s.err = err
		return
	}
	if s.err != nil {
		c.log.Info("catalog source recovered", "source", s.name)
	}
	s.err = nil
	s.images = images
	s.refreshed = s.checked
	c.log.Debug("listed catalog source", "source", s.name, "images", len(images), "took", time.Since(start))
}

// listSource lists one source, each image with its Source set and its
// types normalised.
func (c *Catalog) listSource(ctx context.Context, s *source) ([]client.Image, error) {
	var images []client.Image
	switch s.kind {
	case KindLocal:
		locals, err := c.opts.Local.LabelledImages(ctx, TypesLabel)
		if err != nil {
			return nil, err
		}
		for _, l := range locals {
			types := ParseTypes(l.Labels[TypesLabel])
			if len(types) == 0 {
				continue
			}
			images = append(images, client.Image{ID: l.Ref, Types: types, Digest: cmp.Or(l.RepoDigest, l.ID)})
		}
	case KindRegistry, KindHarbor:
		user, pass, err := c.sourceCredential(s)
		if err != nil {
			return nil, err
		}
		if s.kind == KindHarbor {
			h := &harborClient{base: s.url, user: user, password: pass, http: s.http}
			images, err = h.list(ctx, s.cfg.Projects)
		} else {
			rc := newRegClient(s.url, user, pass, s.http)
			images, err = s.reg.list(ctx, rc, s.url.Host)
		}
		var partial *partialError
		if err != nil && !errors.As(err, &partial) {
			return nil, err
		}
		for i := range images {
			images[i].Source = s.name
		}
		slices.SortFunc(images, func(a, b client.Image) int { return strings.Compare(a.ID, b.ID) })
		return images, err
	}
	for i := range images {
		images[i].Source = s.name
	}
	slices.SortFunc(images, func(a, b client.Image) int { return strings.Compare(a.ID, b.ID) })
	return images, nil
}

// sourceCredential reads the credential a registry source names; none
// means anonymous.
func (c *Catalog) sourceCredential(s *source) (string, string, error) {
	if s.cfg.Credential == "" {
		return "", "", nil
	}
	cred, ok, err := c.opts.Credentials.Registry(s.cfg.Credential)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", fmt.Errorf("credential %q is not stored (add it with PUT /api/v1/registries/%s)", s.cfg.Credential, s.cfg.Credential)
	}
	return cred.Username, cred.Password, nil
}

// noteChange signals Changed when the merged listing differs from the one
// last signalled.
func (c *Catalog) noteChange() {
	b, _ := json.Marshal(c.merged())
	sum := sha256.Sum256(b)
	c.mu.Lock()
	same := sum == c.last
	c.last = sum
	c.mu.Unlock()
	if !same {
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

// merged is the sources' listings merged by image id, ordered by id.
func (c *Catalog) merged() []client.Image {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []client.Image
	index := map[string]int{}
	for _, s := range c.sources {
		for _, im := range s.images {
			if i, ok := index[im.ID]; ok {
				out[i].Types = ParseTypes(strings.Join(append(slices.Clone(out[i].Types), im.Types...), ","))
				out[i].Digest = cmp.Or(out[i].Digest, im.Digest)
				continue
			}
			index[im.ID] = len(out)
			im.Types = slices.Clone(im.Types)
			out = append(out, im)
		}
	}
	slices.SortFunc(out, func(a, b client.Image) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// List returns the catalog: the merged source listings, then one entry per
// profile, ordered by id (and profile name), keeping only images of type
// typ unless typ is "". It never returns nil.
func (c *Catalog) List(ctx context.Context, typ string) []client.Image {
	_ = ctx
	images := c.merged()
	digests := map[string]string{}
	for _, im := range images {
		digests[im.ID] = im.Digest
	}
	if c.opts.Profiles != nil {
		for _, p := range c.opts.Profiles() {
			if p.Name == "" || p.Image == "" {
				continue
			}
			images = append(images, client.Image{
				ID: p.Image, Types: []string{p.Type}, Digest: digests[p.Image],
				Source: "profile", Profile: p.Name,
			})
		}
	}
	slices.SortStableFunc(images, func(a, b client.Image) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Profile, b.Profile))
	})
	out := make([]client.Image, 0, len(images))
	for _, im := range images {
		if typ == "" || slices.Contains(im.Types, typ) {
			out = append(out, im)
		}
	}
	return out
}

// Sources reports each source's state, local first then the registries
// in configuration order.
func (c *Catalog) Sources() []SourceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SourceStatus, 0, len(c.sources))
	for _, s := range c.sources {
		st := SourceStatus{Name: s.name, Kind: s.kind, Images: len(s.images)}
		if s.url != nil {
			st.URL = s.url.String()
		}
		if s.err != nil {
			st.Error = s.err.Error()
		}
		if !s.refreshed.IsZero() {
			st.Refreshed = s.refreshed.UTC().Format(time.RFC3339)
		}
		if !s.checked.IsZero() {
			st.Checked = s.checked.UTC().Format(time.RFC3339)
		}
		out = append(out, st)
	}
	return out
}

// Repositories returns the hosts of the configured registries, in
// configuration order without repeats (GET repository).
func (c *Catalog) Repositories() []string {
	out := []string{}
	for _, r := range c.opts.Registries {
		h := engine.RegistryHost(r.URL)
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// PullAuth returns the credential to pull image with: the one named by the
// configured registry serving the image's host, else a stored credential
// whose server is that host. An empty Auth means an anonymous pull.
func (c *Catalog) PullAuth(image string) (engine.Auth, error) {
	host := engine.ImageRegistry(image)
	for _, r := range c.opts.Registries {
		if r.Credential == "" || engine.RegistryHost(r.URL) != host {
			continue
		}
		cred, ok, err := c.opts.Credentials.Registry(r.Credential)
		if err != nil {
			return nil, fmt.Errorf("pull credential for %s: %w", image, err)
		}
		if !ok {
			return nil, fmt.Errorf("pull credential for %s: registry %q names credential %q, which is not stored", image, r.Name, r.Credential)
		}
		return authFor(host, cred), nil
	}
	creds, err := c.opts.Credentials.Registries()
	if err != nil {
		return nil, fmt.Errorf("pull credential for %s: %w", image, err)
	}
	for _, cred := range creds {
		if engine.RegistryHost(cred.Server) == host {
			return authFor(host, cred), nil
		}
	}
	return engine.Auth{}, nil
}

func authFor(host string, cred store.RegistryCredential) engine.Auth {
	return engine.Auth{host: {Username: cred.Username, Password: cred.Password, ServerAddress: host}}
}

// ParseTypes reads a berth.types value ("notebook, headless"): the known
// session types it names (case-insensitive), once each, in
// client.SessionTypes order. Unknown words are ignored. It never returns
// nil.
func ParseTypes(s string) []string {
	out := []string{}
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == ';' })
	for _, t := range client.SessionTypes {
		if slices.Contains(words, t) {
			out = append(out, t)
		}
	}
	return out
}

// KnownType reports whether typ is a session type berthd runs.
func KnownType(typ string) bool { return slices.Contains(client.SessionTypes, typ) }

// partialError is a registry listing that failed for some repositories or
// tags only; the rest was listed.
type partialError struct {
	repos []string // image-id prefixes "host/repo:" of repositories not listed
	ids   []string // ids of tags not read
	err   error
}

func (e *partialError) Error() string {
	n := len(e.repos) + len(e.ids)
	what := "tag"
	if len(e.repos) > 0 {
		what = "repository or tag"
	}
	if n != 1 {
		what += "s"
	}
	return fmt.Sprintf("%d %s could not be read (their last entries are kept): %v", n, what, e.err)
}

func (e *partialError) Unwrap() error { return e.err }

// keep returns the entries of old that the failed parts listed before.
func (e *partialError) keep(old []client.Image) []client.Image {
	var out []client.Image
	for _, im := range old {
		if slices.Contains(e.ids, im.ID) || slices.ContainsFunc(e.repos, func(p string) bool { return strings.HasPrefix(im.ID, p) }) {
			out = append(out, im)
		}
	}
	return out
}
