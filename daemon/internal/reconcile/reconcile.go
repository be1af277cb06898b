// Package reconcile converges Docker to the desired state kept in the store.
//
// Jobs call Converge and Remove for the one app they change; the loop in Run
// resyncs every app on a timer and whenever Docker reports an event about
// one of berth's containers. Events are only hints: Docker drops them under
// load, so the timer is what guarantees convergence. Work on one app is
// serialised, so a job and a resync never act on the same app at once.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// Engine is the part of the Docker engine the reconciler drives.
type Engine interface {
	List(ctx context.Context, appID string) ([]apps.Container, error)
	ListAll(ctx context.Context) ([]apps.Container, error)
	Apply(ctx context.Context, app *apps.App, actions []apps.Action, auth engine.Auth) error
	RemoveApp(ctx context.Context, appID string, removeVolumes, removeImages bool) error
}

// Reconciler converges apps one at a time.
type Reconciler struct {
	store  *store.Store
	engine Engine
	log    *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex

	// Changed, if set, is called after an app's containers may have changed.
	Changed func(appID string)
}

// New returns a Reconciler.
func New(st *store.Store, eng Engine, log *slog.Logger) *Reconciler {
	return &Reconciler{store: st, engine: eng, log: log, locks: map[string]*sync.Mutex{}}
}

// lock serialises work on one app.
func (r *Reconciler) lock(appID string) func() {
	r.mu.Lock()
	l, ok := r.locks[appID]
	if !ok {
		l = &sync.Mutex{}
		r.locks[appID] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Converge plans and applies the changes that make Docker run app, and
// returns the containers it has afterwards.
func (r *Reconciler) Converge(ctx context.Context, app *apps.App, mode apps.Mode, auth engine.Auth) ([]apps.Container, error) {
	defer r.lock(app.ID)()
	defer r.changed(app.ID)
	actual, err := r.engine.List(ctx, app.ID)
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", app.ID, err)
	}
	actions := apps.Plan(app, actual, mode)
	if len(actions) > 0 {
		r.log.Info("converging app", "app", app.ID, "actions", describe(actions))
		if err := r.engine.Apply(ctx, app, actions, auth); err != nil {
			return nil, err
		}
	}
	after, err := r.engine.List(ctx, app.ID)
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", app.ID, err)
	}
	return after, nil
}

// Containers lists the app's containers as Docker has them.
func (r *Reconciler) Containers(ctx context.Context, appID string) ([]apps.Container, error) {
	cs, err := r.engine.List(ctx, appID)
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", appID, err)
	}
	return cs, nil
}

// Remove removes every container of the app and, when asked, its volumes
// and images.
func (r *Reconciler) Remove(ctx context.Context, appID string, removeVolumes, removeImages bool) error {
	defer r.lock(appID)()
	defer r.changed(appID)
	return r.engine.RemoveApp(ctx, appID, removeVolumes, removeImages)
}

func (r *Reconciler) changed(appID string) {
	if r.Changed != nil {
		r.Changed(appID)
	}
}

// Auth returns the registry credentials berthd knows, by registry host.
func (r *Reconciler) Auth() engine.Auth {
	regs, err := r.store.Registries()
	if err != nil {
		r.log.Warn("cannot read registry credentials", "err", err)
		return nil
	}
	auth := engine.Auth{}
	for _, c := range regs {
		auth[c.Server] = engine.Credential{Username: c.Username, Password: c.Password, ServerAddress: c.Server}
	}
	return auth
}

// ResyncApp converges one app to its stored desired state.
func (r *Reconciler) ResyncApp(ctx context.Context, appID string) error {
	rec, ok, err := r.store.App(appID)
	if err != nil {
		return fmt.Errorf("read desired state of %s: %w", appID, err)
	}
	if !ok || rec.Desired == store.DesiredStopped {
		// A stop that was interrupted, or containers whose app is gone from
		// the store: only a stopped app's containers are removed; unknown
		// ones are left for the person to decide (see Unmanaged).
		if ok {
			return r.Remove(ctx, appID, false, false)
		}
		return nil
	}
	if rec.Error != "" {
		return nil // the last job failed; wait for the next one
	}
	if rec.App.Kind == apps.KindNuvlaSwarm {
		return nil // Swarm keeps a stack's services running itself
	}
	if rec.App.Kind == apps.KindSession {
		return nil // the sessions manager owns a session's life; never restarted
	}
	_, err = r.Converge(ctx, &rec.App, apps.ModeResync, r.Auth())
	return err
}

// Resync converges every app in the store.
func (r *Reconciler) Resync(ctx context.Context) error {
	recs, err := r.store.Apps()
	if err != nil {
		return fmt.Errorf("read desired state: %w", err)
	}
	var errs []error
	for _, rec := range recs {
		if err := r.ResyncApp(ctx, rec.App.ID); err != nil {
			errs = append(errs, fmt.Errorf("app %s: %w", rec.App.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Run resyncs on start, every interval, and shortly after Docker reports an
// event about an app. It returns when ctx is done. tick, if set, is called
// after every pass (the main loop uses it to prove it is alive).
func (r *Reconciler) Run(ctx context.Context, events <-chan engine.Event, interval time.Duration, tick func(error)) {
	const debounce = 500 * time.Millisecond
	t := time.NewTicker(interval)
	defer t.Stop()
	pending := map[string]bool{}
	var flush <-chan time.Time
	pass := func(err error) {
		if err != nil && ctx.Err() == nil {
			r.log.Warn("resync failed", "err", err)
		}
		if tick != nil {
			tick(err)
		}
	}
	pass(r.Resync(ctx))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			clear(pending)
			pass(r.Resync(ctx))
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.AppID != "" && !pending[ev.AppID] {
				pending[ev.AppID] = true
				r.changed(ev.AppID)
				if flush == nil {
					flush = time.After(debounce)
				}
			}
		case <-flush:
			flush = nil
			var errs []error
			for id := range pending {
				if err := r.ResyncApp(ctx, id); err != nil {
					errs = append(errs, fmt.Errorf("app %s: %w", id, err))
				}
			}
			clear(pending)
			pass(errors.Join(errs...))
		}
	}
}

func describe(as []apps.Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = fmt.Sprintf("%s %s (%s)", a.Type, a.Service, a.Reason)
	}
	return out
}
