package agent

import (
	"context"
	"time"
)

// swarmInfoTimeout bounds the swarm query of a commission.
const swarmInfoTimeout = 10 * time.Second

// swarmCommission returns the commission keys that describe the box's
// swarm when its Docker engine is a swarm manager: join tokens and
// cluster data, as NuvlaEdge sends them. It returns nothing otherwise, or
// when Docker cannot say (the commission goes on without them). The
// tokens are secrets: they are never logged.
func (a *Agent) swarmCommission(ctx context.Context) map[string]any {
	if a.opts.Recon == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, swarmInfoTimeout)
	defer cancel()
	si, err := a.opts.Recon.Swarm(ctx)
	if err != nil {
		a.log.Warn("cannot read the swarm state; commissioning without it", "err", err)
		return nil
	}
	if !si.Manager {
		return nil
	}
	managers, workers := si.Managers, si.Workers
	if managers == nil {
		managers = []string{}
	}
	if workers == nil {
		workers = []string{}
	}
	return map[string]any{
		"swarm-token-manager":  si.TokenManager,
		"swarm-token-worker":   si.TokenWorker,
		"cluster-id":           si.ClusterID,
		"cluster-orchestrator": "swarm",
		"cluster-managers":     managers,
		"cluster-workers":      workers,
	}
}
