package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/internal/nuvla"
	"github.com/berth-edge/berth/daemon/internal/nuvla/nuvlatest"
	"github.com/berth-edge/berth/daemon/internal/reconcile"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// hostRig is a commissioned box on nuvlatest with a real store and a
// running Runner: the setting of the host-level job tests.
type hostRig struct {
	t      *testing.T
	srv    *nuvlatest.Server
	box    string
	client *nuvla.Client
	store  *store.Store
	runner *Runner
}

func newHostRig(t *testing.T, host HostOptions, recon func(*store.Store) *reconcile.Reconciler) *hostRig {
	t.Helper()
	srv, err := nuvlatest.New(nuvlatest.Options{NoDeploymentStateJobs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	box := srv.CreateNuvlabox("jobs")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := nuvla.New(nuvla.Options{Endpoint: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	key, secret, err := c.Activate(ctx, box)
	if err != nil {
		t.Fatal(err)
	}
	c.SetCredentials(key, secret)
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Operation(ctx, box, "commission", map[string]any{"capabilities": []string{"NUVLA_HEARTBEAT", "NUVLA_JOB_PULL"}}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts := Options{Box: c, Store: st, Host: host,
		Session: func(ctx context.Context, key, secret string) (*nuvla.Client, error) {
			s, err := nuvla.New(nuvla.Options{Endpoint: srv.URL()})
			if err != nil {
				return nil, err
			}
			s.SetCredentials(key, secret)
			return s, s.Login(ctx)
		}}
	if recon != nil {
		opts.Recon = recon(st)
	}
	r := New(opts)
	rctx, rcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.Run(rctx)
	}()
	t.Cleanup(func() {
		rcancel()
		wg.Wait()
	})
	return &hostRig{t: t, srv: srv, box: box, client: c, store: st, runner: r}
}

// owner calls the control plane as the box's owner, as the Nuvla UI does,
// and returns the answer's body; it fails the test on another status.
func (h *hostRig) owner(method, path string, body any, want int) map[string]any {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.srv.URL()+"/api/"+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("nuvla-authn-info", nuvlatest.Owner+" "+nuvlatest.Owner+" group/nuvla-user")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, raw, want)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

// action runs a nuvlabox action as the owner and returns the job it made.
func (h *hostRig) action(op string, body any) string {
	h.t.Helper()
	r := h.owner("POST", h.box+"/"+op, body, http.StatusAccepted)
	job, _ := r["location"].(string)
	if job == "" {
		h.t.Fatalf("%s created no job: %v", op, r)
	}
	return job
}

// run hands the job to the runner, as a heartbeat would, and waits for
// its final state.
func (h *hostRig) run(job string) map[string]any {
	h.t.Helper()
	h.runner.Submit(job)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	doc, err := h.srv.WaitJob(ctx, job)
	if err != nil {
		h.t.Fatalf("job %s: %v", job, err)
	}
	return doc
}

func expectJob(t *testing.T, doc map[string]any, state, msgPart string) string {
	t.Helper()
	msg, _ := doc["status-message"].(string)
	if doc["state"] != state || !bytes.Contains([]byte(msg), []byte(msgPart)) {
		t.Fatalf("job %v ended %v: %q; want %s mentioning %q", doc["id"], doc["state"], msg, state, msgPart)
	}
	return msg
}
