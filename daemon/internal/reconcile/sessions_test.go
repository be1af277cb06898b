package reconcile

import (
	"context"
	"testing"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// A session's life belongs to the sessions manager: resync never creates,
// starts or restarts its container, even when it is missing.
func TestResyncLeavesSessionsAlone(t *testing.T) {
	f := newFixture(t)
	a := f.app(t, apps.RestartNone)
	a.Kind = apps.KindSession
	a.Owner = "1000"
	f.put(t, a, store.DesiredRunning, "")
	if err := f.recon.ResyncApp(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	if cs := f.containers(t, a.ID); len(cs) != 0 {
		t.Errorf("resync created %d containers for a session", len(cs))
	}
}
