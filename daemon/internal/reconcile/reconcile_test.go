package reconcile

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
	"github.com/berth-edge/berth/daemon/internal/store"
)

type fixture struct {
	st    *store.Store
	eng   *engine.Engine
	recon *Reconciler
	image string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	image := enginetest.BuildTestImage(t, enginetest.TestImage)
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := engine.New(context.Background(), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return &fixture{st: st, eng: eng, recon: New(st, eng, slog.New(slog.DiscardHandler)), image: image}
}

func (f *fixture) app(t *testing.T, restart string) *apps.App {
	t.Helper()
	id := "rc-" + rand.Text()[:10]
	enginetest.CleanupApp(t, f.eng.Client(), id)
	return &apps.App{ID: id, Kind: apps.KindNuvlaComponent, Services: []apps.Service{{
		Name: "web", Image: f.image, Restart: apps.RestartPolicy{Condition: restart},
		Ports: []apps.Port{{Target: 8080, Protocol: "tcp"}},
	}}}
}

func (f *fixture) put(t *testing.T, a *apps.App, desired, errMsg string) {
	t.Helper()
	if err := f.st.PutApp(store.AppRecord{App: *a, Desired: desired, Source: store.SourceLocal, Error: errMsg}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) containers(t *testing.T, id string) []apps.Container {
	t.Helper()
	cs, err := f.eng.List(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (f *fixture) removeBehindOurBack(t *testing.T, id string) {
	t.Helper()
	for _, c := range f.containers(t, id) {
		if err := f.eng.Client().ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestResync(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	wanted := f.app(t, apps.RestartAny)
	f.put(t, wanted, store.DesiredRunning, "")
	failed := f.app(t, apps.RestartAny)
	f.put(t, failed, store.DesiredRunning, "image pull failed")
	stopping := f.app(t, apps.RestartAny)
	unknown := f.app(t, apps.RestartAny)
	for _, a := range []*apps.App{stopping, unknown} {
		if _, err := f.recon.Converge(ctx, a, apps.ModeStart, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.put(t, stopping, store.DesiredStopped, "")

	if err := f.recon.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	if cs := f.containers(t, wanted.ID); len(cs) != 1 || cs[0].State != apps.StateRunning {
		t.Errorf("wanted app: %v, want one running container", cs)
	}
	if cs := f.containers(t, failed.ID); len(cs) != 0 {
		t.Errorf("an app whose last job failed was touched: %v", cs)
	}
	if cs := f.containers(t, stopping.ID); len(cs) != 0 {
		t.Errorf("an interrupted stop was not finished: %v", cs)
	}
	if cs := f.containers(t, unknown.ID); len(cs) != 1 {
		t.Errorf("containers no desired state claims were touched: %v", cs)
	}

	// Converged: a second resync changes nothing.
	before := f.containers(t, wanted.ID)[0].ID
	if err := f.recon.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	if after := f.containers(t, wanted.ID); len(after) != 1 || after[0].ID != before {
		t.Errorf("second resync changed the app: %v", after)
	}
}

// A container removed behind berthd's back comes back soon after Docker's
// event, well before the periodic resync.
func TestRunRepairsOnEvents(t *testing.T) {
	f := newFixture(t)
	a := f.app(t, apps.RestartAny)
	f.put(t, a, store.DesiredRunning, "")
	ctx, cancel := context.WithCancel(context.Background())
	passes := make(chan error, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.recon.Run(ctx, f.eng.Events(ctx), time.Hour, func(err error) { passes <- err })
	}()
	defer func() { cancel(); <-done }()

	if err := <-passes; err != nil { // the initial resync
		t.Fatal(err)
	}
	first := f.containers(t, a.ID)
	if len(first) != 1 {
		t.Fatalf("initial resync: %v", first)
	}
	f.removeBehindOurBack(t, a.ID)
	deadline := time.Now().Add(20 * time.Second)
	for {
		cs := f.containers(t, a.ID)
		if len(cs) == 1 && cs[0].ID != first[0].ID && cs[0].State == apps.StateRunning {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container not recreated after removal: %s", fmt.Sprint(cs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
