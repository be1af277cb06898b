package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-edge/berth/daemon/client"
)

// harborClient lists a Harbor through its v2.0 API, as skaha's image cache
// did: projects → repositories → artifacts?with_label=true. The label
// names of an artifact that are session types are its types (the image
// config's berth.types label counts too). Harbor takes Basic credentials.
type harborClient struct {
	base     *url.URL
	user     string
	password string
	http     *http.Client
}

// harborProject, harborRepository and harborArtifact are the parts of
// Harbor's Project, Repository and Artifact models berth reads.
type harborProject struct {
	ProjectID int64  `json:"project_id"`
	Name      string `json:"name"`
}

type harborRepository struct {
	ID        int64  `json:"id"`
	ProjectID int64  `json:"project_id"`
	Name      string `json:"name"` // "project/repo", the project included
}

type harborArtifact struct {
	ID     int64  `json:"id"`
	Type   string `json:"type"` // IMAGE, CHART, CNAB...
	Digest string `json:"digest"`
	Tags   []struct {
		Name string `json:"name"`
	} `json:"tags"`
	Labels []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"labels"`
	ExtraAttrs struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	} `json:"extra_attrs"`
}

// list returns every tagged, labelled image artifact of the given projects
// (every project the user sees when projects is empty).
func (h *harborClient) list(ctx context.Context, projects []string) ([]client.Image, error) {
	if len(projects) == 0 {
		ps, err := pages[harborProject](ctx, h, "/api/v2.0/projects", url.Values{"with_detail": {"false"}})
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		for _, p := range ps {
			projects = append(projects, p.Name)
		}
	}
	var out []client.Image
	var partial partialError
	var errs []error
	for _, p := range projects {
		repos, err := pages[harborRepository](ctx, h, "/api/v2.0/projects/"+url.PathEscape(p)+"/repositories", nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			partial.repos = append(partial.repos, h.base.Host+"/"+p+"/")
			errs = append(errs, fmt.Errorf("list repositories of project %s: %w", p, err))
			continue
		}
		for _, r := range repos {
			rel := strings.TrimPrefix(r.Name, p+"/")
			// Harbor wants a slash in a repository name encoded twice.
			path := "/api/v2.0/projects/" + url.PathEscape(p) + "/repositories/" +
				strings.ReplaceAll(url.PathEscape(rel), "%2F", "%252F") + "/artifacts"
			arts, err := pages[harborArtifact](ctx, h, path, url.Values{"with_label": {"true"}, "with_tag": {"true"}})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				partial.repos = append(partial.repos, h.base.Host+"/"+r.Name+":")
				errs = append(errs, fmt.Errorf("list artifacts of %s: %w", r.Name, err))
				continue
			}
			for _, a := range arts {
				if a.Type != "" && !strings.EqualFold(a.Type, "IMAGE") {
					continue
				}
				var words []string
				for _, l := range a.Labels {
					words = append(words, l.Name)
				}
				types := ParseTypes(strings.Join(words, ","))
				for _, t := range ParseTypes(a.ExtraAttrs.Config.Labels[TypesLabel]) {
					if !slices.Contains(types, t) {
						types = append(types, t)
					}
				}
				if len(types) == 0 {
					continue
				}
				types = ParseTypes(strings.Join(types, ","))
				for _, t := range a.Tags {
					out = append(out, client.Image{ID: h.base.Host + "/" + r.Name + ":" + t.Name, Types: types, Digest: a.Digest})
				}
			}
		}
	}
	if len(errs) > 0 {
		partial.err = firstErrors(errs)
		return out, &partial
	}
	return out, nil
}

// pageSize is how many entries a Harbor listing asks for per page (its
// maximum).
const pageSize = 100

// pages fetches every page of a Harbor listing: page_size=100, following
// the Link header's next page (or the next page number while pages come
// back full, for Harbors that send no Link).
func pages[T any](ctx context.Context, h *harborClient, path string, q url.Values) ([]T, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("page_size", strconv.Itoa(pageSize))
	var all []T
	for page := 1; ; page++ {
		if page > 10000 {
			return nil, fmt.Errorf("harbor %s: more than 10000 pages of %s", h.base.Host, path)
		}
		q.Set("page", strconv.Itoa(page))
		var items []T
		hdr, err := h.getJSON(ctx, path+"?"+q.Encode(), &items)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if hdr.Get("Link") != "" {
			if nextLink(h.base, hdr) == "" {
				return all, nil
			}
			continue
		}
		if len(items) < pageSize {
			return all, nil
		}
	}
}

// getJSON fetches one API answer into v.
func (h *harborClient) getJSON(ctx context.Context, pathQuery string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base.Scheme+"://"+h.base.Host+pathQuery, nil)
	if err != nil {
		return nil, fmt.Errorf("harbor %s: %w", h.base.Host, err)
	}
	req.Header.Set("Accept", "application/json")
	if h.user != "" {
		req.SetBasicAuth(h.user, h.password)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("harbor %s: %w", h.base.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, &authError{host: h.base.Host, user: h.user, detail: registryDetail(readSome(resp.Body))}
	}
	if resp.StatusCode/100 != 2 {
		return nil, statusError(h.base.Host, http.MethodGet, req.URL.Path, resp.StatusCode, readSome(resp.Body))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("harbor %s: read %s: %w", h.base.Host, req.URL.Path, err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("harbor %s: %s is larger than %d bytes", h.base.Host, req.URL.Path, maxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("harbor %s: decode %s: %w", h.base.Host, req.URL.Path, err)
	}
	return resp.Header, nil
}
