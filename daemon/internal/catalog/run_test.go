package catalog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// TestRunRefreshes lists the registries every Refresh, and at once on
// RefreshSoon, and signals Changed only when the listing changed.
func TestRunRefreshes(t *testing.T) {
	t.Parallel()
	h := newFakeHarbor(t, "u", "p")
	h.projects = []string{"p"}
	h.repos["p"] = []string{"p/app"}
	h.artifacts["p/app"] = []harborArtifact{artifact("sha256:"+strings.Repeat("1", 64), "IMAGE", []string{"1"}, []string{"notebook"}, "")}
	st := openStore(t)
	if err := st.PutRegistry(store.RegistryCredential{Name: "h", Server: h.srv.URL, Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	run := func(refresh time.Duration) *Catalog {
		cat, err := New(Options{
			Credentials: st,
			Registries:  []config.CatalogRegistry{{Name: "h", URL: h.srv.URL, Kind: "harbor", Credential: "h"}},
			Refresh:     refresh,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- cat.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
		return cat
	}
	wait := func(cat *Catalog, what string) {
		t.Helper()
		select {
		case <-cat.Changed():
		case <-time.After(10 * time.Second):
			t.Fatalf("no change signalled: %s", what)
		}
	}
	add := func(tag string) {
		h.mu.Lock()
		h.artifacts["p/app"] = append(h.artifacts["p/app"], artifact("sha256:"+strings.Repeat(tag, 64), "IMAGE", []string{tag}, []string{"notebook"}, ""))
		h.mu.Unlock()
	}

	ticking := run(100 * time.Millisecond)
	wait(ticking, "first listing")
	if n := len(ticking.List(t.Context(), "")); n != 1 {
		t.Fatalf("first listing: %d images", n)
	}
	// Unchanged listings signal nothing.
	select {
	case <-ticking.Changed():
		t.Fatal("a change signalled with nothing changed")
	case <-time.After(400 * time.Millisecond):
	}
	add("2")
	wait(ticking, "a new artifact")
	if n := len(ticking.List(t.Context(), "")); n != 2 {
		t.Errorf("after a new artifact: %d images", n)
	}

	// With a long refresh, RefreshSoon lists at once.
	slow := run(time.Hour)
	wait(slow, "first listing")
	add("3")
	slow.RefreshSoon()
	wait(slow, "RefreshSoon")
	if n := len(slow.List(t.Context(), "")); n != 3 {
		t.Errorf("after RefreshSoon: %d images", n)
	}
}
