package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
)

// LocalImage is one tagged image of the local image store.
type LocalImage struct {
	// Ref is one of the image's tags ("registry.example.com/p/app:1").
	Ref string
	// ID is the image id ("sha256:...", the digest of its config).
	ID string
	// RepoDigest is the manifest digest ("sha256:...") the image was pulled
	// or pushed by in Ref's repository; "" for an image only built here.
	RepoDigest string
	// Labels are the image config's labels.
	Labels map[string]string
}

// LabelledImages lists the local images that carry the label key, one entry
// per tag, ordered by Ref. Untagged images are left out.
func (e *Engine) LabelledImages(ctx context.Context, key string) ([]LocalImage, error) {
	sums, err := e.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", key))})
	if err != nil {
		return nil, fmt.Errorf("list local images labelled %s: %w", key, err)
	}
	var out []LocalImage
	for _, s := range sums {
		if _, ok := s.Labels[key]; !ok {
			continue
		}
		for _, tag := range s.RepoTags {
			if tag == "" || tag == "<none>:<none>" {
				continue
			}
			out = append(out, LocalImage{
				Ref:        tag,
				ID:         s.ID,
				RepoDigest: repoDigest(tag, s.RepoDigests),
				Labels:     s.Labels,
			})
		}
	}
	slices.SortFunc(out, func(a, b LocalImage) int { return strings.Compare(a.Ref, b.Ref) })
	return out, nil
}

// repoDigest picks, from an image's "name@sha256:..." digests, the one of
// tag's repository.
func repoDigest(tag string, digests []string) string {
	named, err := reference.ParseNormalizedNamed(tag)
	if err != nil {
		return ""
	}
	for _, d := range digests {
		dn, err := reference.ParseNormalizedNamed(d)
		if err != nil {
			continue
		}
		if c, ok := dn.(reference.Canonical); ok && dn.Name() == named.Name() {
			return c.Digest().String()
		}
	}
	return ""
}

// WatchImages calls changed whenever the local image store changes (an
// image pulled, built, loaded, imported, tagged, untagged or deleted) from
// the moment it is called, until ctx ends; it then returns nil. When Docker's event stream fails it
// reconnects with jittered backoff and calls changed once more, since
// events may have been missed meanwhile. changed must not block for long.
func (e *Engine) WatchImages(ctx context.Context, changed func()) error {
	backoff := eventsBackoffMin
	since := time.Now()
	for {
		sctx, cancel := context.WithCancel(ctx)
		msgs, errs := e.cli.Events(sctx, events.ListOptions{
			Since:   fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
			Filters: filters.NewArgs(filters.Arg("type", string(events.ImageEventType))),
		})
		var streamErr error
	stream:
		for {
			select {
			case <-ctx.Done():
				cancel()
				return nil
			case m := <-msgs:
				backoff = eventsBackoffMin
				if t := time.Unix(0, m.TimeNano); m.TimeNano != 0 && t.After(since) {
					since = t
				}
				switch m.Action {
				case events.ActionPull, events.ActionTag, events.ActionUnTag, events.ActionDelete,
					events.ActionLoad, events.ActionImport, events.ActionCreate:
					changed()
				}
			case err := <-errs:
				streamErr = err
				break stream
			}
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if streamErr == nil {
			streamErr = errors.New("stream closed")
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, eventsBackoffMax)
		e.log.Warn("docker image event stream failed, reconnecting", "error", streamErr, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		changed()
	}
}
