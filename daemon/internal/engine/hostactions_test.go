package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// TestLogLinesAndRemove runs a container that prints a line and exits,
// reads its output with timestamps, tail and since, then removes it and
// checks that the one-object removals report missing objects as not found.
func TestLogLinesAndRemove(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	svc := h.web(map[string]string{"TESTAPP_EXIT": "4"})
	acts := append(creates("web"), apps.Action{Type: apps.ActionStart, Service: "web", Reason: "new container"})
	if err := h.e.Apply(ctx, h.app(svc), acts, nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	id := mustList(t, h.e, h.appID)[0].ID
	var lines []LogLine
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && (len(lines) == 0 || !strings.Contains(lines[len(lines)-1].Text, "exiting with code 4")) {
		var err error
		if lines, err = h.e.LogLines(ctx, id, time.Time{}, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last.Text, "exiting with code 4") || time.Since(last.Time) > time.Minute {
		t.Fatalf("lines = %+v", lines)
	}
	if got, err := h.e.LogLines(ctx, id, last.Time, 0); err != nil || len(got) != 0 {
		t.Fatalf("lines after the last one = %+v, %v", got, err)
	}
	if got, err := h.e.LogLines(ctx, id, time.Time{}, 1); err != nil || len(got) != 1 || got[0] != last {
		t.Fatalf("tail 1 = %+v, %v", got, err)
	}
	if len(lines) > 1 {
		if got, err := h.e.LogLines(ctx, id, lines[0].Time, 0); err != nil || len(got) != len(lines)-1 {
			t.Fatalf("lines after the first = %+v, %v", got, err)
		}
	}

	if err := h.e.RemoveContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Inspect(ctx, id); !IsNotFound(err) {
		t.Fatalf("container still there: %v", err)
	}
	for what, err := range map[string]error{
		"container": h.e.RemoveContainer(ctx, id),
		"volume":    h.e.RemoveVolume(ctx, "berth-no-such-volume-"+h.appID),
		"network":   h.e.RemoveNetwork(ctx, "berth-no-such-network-"+h.appID),
		"image":     h.e.RemoveImage(ctx, "berth-no-such-image:"+h.appID),
	} {
		if !IsNotFound(err) {
			t.Errorf("removing a missing %s: %v, want not found", what, err)
		}
	}
	if ok, err := h.e.NetworkExists(ctx, "bridge"); err != nil || !ok {
		t.Errorf("NetworkExists(bridge) = %v, %v", ok, err)
	}
}
