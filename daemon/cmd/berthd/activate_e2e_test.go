package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	bclient "github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/nuvla/nuvlatest"
)

// TestActivateFromLocalAPI links a standalone berthd to a control plane
// through POST /api/v1/nuvla: a wrong box id fails clearly and may be
// corrected without a restart; the right one activates, commissions and
// heartbeats; after a restart the box is still linked.
func TestActivateFromLocalAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	cp, err := nuvlatest.New(nuvlatest.Options{Addr: "127.0.0.1:0", RefreshInterval: 1, HeartbeatInterval: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Close)
	box := cp.CreateNuvlabox("linked-from-the-ui")
	dir := t.TempDir()
	d := startDaemon(t, dir, nil)
	c := d.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	st, err := c.Status(ctx)
	if err != nil || st.Mode != "standalone" {
		t.Fatalf("status before linking: %+v, %v", st, err)
	}

	// Bad input is refused with a message naming the field.
	_, err = c.ActivateNuvla(ctx, bclient.Activation{Endpoint: "ftp://x", NuvlaboxID: strings.TrimPrefix(box, "nuvlabox/")})
	var apiErr *bclient.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !strings.Contains(apiErr.Message, "nuvla.endpoint") {
		t.Fatalf("ftp endpoint: want 400 naming nuvla.endpoint, got %v", err)
	}

	// A box id the control plane does not know: the agent says so, and
	// the person at the box may try again.
	wrong := "nuvlabox/00000000-0000-4000-8000-000000000000"
	if _, err := c.ActivateNuvla(ctx, bclient.Activation{Endpoint: cp.URL(), NuvlaboxID: wrong}); err != nil {
		t.Fatalf("activate with a wrong id: %v", err)
	}
	eventually(t, 30*time.Second, "the wrong id reported", func() (bool, string) {
		st, err := c.Status(ctx)
		return err == nil && st.State == "error" && strings.Contains(st.Message, "does not exist"), mustJSON(st)
	})

	st, err = c.ActivateNuvla(ctx, bclient.Activation{Endpoint: cp.URL(), NuvlaboxID: box})
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	if st.Mode != "nuvla" || st.Nuvla == nil || st.Nuvla.NuvlaboxID != box {
		t.Fatalf("status right after activation: %s", mustJSON(st))
	}
	eventually(t, 30*time.Second, "box online", func() (bool, string) {
		doc, _ := cp.Resource(box)
		st, _ := c.Status(ctx)
		return doc["state"] == "COMMISSIONED" && doc["online"] == true && st.State == "online", mustJSON(map[string]any{"doc-state": doc["state"], "status": st.State})
	})

	// Linked once, linking again is a conflict.
	_, err = c.ActivateNuvla(ctx, bclient.Activation{Endpoint: cp.URL(), NuvlaboxID: box})
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("second activation: want 409, got %v", err)
	}

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, dir, nil)
	c = d.Client()
	eventually(t, 30*time.Second, "still linked after a restart", func() (bool, string) {
		st, err := c.Status(ctx)
		return err == nil && st.Mode == "nuvla" && st.State == "online", mustJSON(st)
	})
}
