package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine"
)

// StackEngine is the part of the Docker engine that runs swarm stacks.
// *engine.Engine implements it; an Engine that does not cannot run swarm
// apps.
type StackEngine interface {
	Swarm(ctx context.Context) (engine.SwarmInfo, error)
	DeployStack(ctx context.Context, app *apps.App, auth engine.Auth) error
	StackServices(ctx context.Context, ns string) ([]engine.StackService, error)
	WaitStack(ctx context.Context, ns string) ([]engine.StackService, error)
}

func (r *Reconciler) stackEngine() (StackEngine, error) {
	se, ok := r.engine.(StackEngine)
	if !ok {
		return nil, fmt.Errorf("this engine cannot run swarm stacks")
	}
	return se, nil
}

// Swarm reports the box's place in a swarm (Manager false when it is not
// a manager, or the engine knows nothing of swarms).
func (r *Reconciler) Swarm(ctx context.Context) (engine.SwarmInfo, error) {
	se, err := r.stackEngine()
	if err != nil {
		return engine.SwarmInfo{}, nil
	}
	return se.Swarm(ctx)
}

// DeployStack deploys a swarm app and waits, at most wait, for its
// replicated services to run their tasks; it returns the services.
func (r *Reconciler) DeployStack(ctx context.Context, app *apps.App, auth engine.Auth, wait time.Duration) ([]engine.StackService, error) {
	se, err := r.stackEngine()
	if err != nil {
		return nil, err
	}
	defer r.lock(app.ID)()
	defer r.changed(app.ID)
	if err := se.DeployStack(ctx, app, auth); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ss, err := se.WaitStack(wctx, app.ID)
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", app.ID, err)
	}
	return ss, nil
}

// StackServices lists the services of a stack.
func (r *Reconciler) StackServices(ctx context.Context, ns string) ([]engine.StackService, error) {
	se, err := r.stackEngine()
	if err != nil {
		return nil, err
	}
	return se.StackServices(ctx, ns)
}
