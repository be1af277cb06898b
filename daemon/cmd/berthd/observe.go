package main

import (
	"sync"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/events"
	"github.com/berth-edge/berth/daemon/internal/metrics"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// observer turns job and app changes into events and metrics.
type observer struct {
	hub     *events.Hub
	metrics *metrics.Metrics
	store   *store.Store

	mu   sync.Mutex
	seen map[string]string // job id -> state and update time last published
}

// recentJobs is how many of the newest journaled jobs are checked for
// changes on each notification.
const recentJobs = 20

func newObserver(hub *events.Hub, m *metrics.Metrics, st *store.Store) *observer {
	o := &observer{hub: hub, metrics: m, store: st, seen: map[string]string{}}
	// Jobs already journaled are history: neither events nor durations.
	if recs, err := st.Jobs(); err == nil {
		for _, j := range recs {
			o.seen[j.ID] = jobKey(j)
		}
	}
	return o
}

func jobKey(j store.JobRecord) string {
	return j.State + "|" + j.Updated.String() + "|" + j.Message
}

// jobsChanged publishes the jobs whose state or progress changed, and
// records the duration of those that just finished.
func (o *observer) jobsChanged() {
	recs, err := o.store.Jobs()
	if err != nil {
		return
	}
	if len(recs) > recentJobs {
		recs = recs[:recentJobs]
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(recs) - 1; i >= 0; i-- { // oldest first
		j := recs[i]
		k := jobKey(j)
		prev, known := o.seen[j.ID]
		if known && prev == k {
			continue
		}
		o.seen[j.ID] = k
		o.hub.Publish(events.TypeJob, client.Job{ID: j.ID, Action: j.Action, Target: j.Target, State: j.State,
			Message: j.Message, ReturnCode: j.ReturnCode, Received: j.Received, Updated: j.Updated})
		wasFinal := known && (prevState(prev) == store.JobSucceeded || prevState(prev) == store.JobFailed)
		if j.Finished() && !wasFinal && o.metrics != nil {
			result := "success"
			if j.State == store.JobFailed {
				result = "failed"
			}
			o.metrics.ObserveJob(j.Action, result, j.Updated.Sub(j.Received))
		}
	}
	if len(o.seen) > 4*recentJobs {
		keep := map[string]string{}
		for _, j := range recs {
			keep[j.ID] = o.seen[j.ID]
		}
		o.seen = keep
	}
}

func prevState(k string) string {
	for i := 0; i < len(k); i++ {
		if k[i] == '|' {
			return k[:i]
		}
	}
	return k
}

// appChanged publishes that an app's containers changed, with what the
// store says of it. A session's event goes to its owner (and admins) only.
func (o *observer) appChanged(appID string) {
	ev := client.AppEvent{ID: appID, Action: "changed"}
	rec, ok, err := o.store.App(appID)
	if err != nil || !ok {
		// Removed, or containers no desired state claims.
		o.hub.Publish(events.TypeApp, ev)
		return
	}
	ev.Name, ev.Kind, ev.Desired = rec.App.Name, string(rec.App.Kind), rec.Desired
	if rec.Error != "" {
		ev.Desired = "error"
	}
	if rec.App.Owner != "" {
		o.hub.PublishFor(rec.App.Owner, events.TypeApp, ev)
		return
	}
	o.hub.Publish(events.TypeApp, ev)
}
