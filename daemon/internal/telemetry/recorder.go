package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

// Recorder samples on a timer and on demand, keeps the bounded history and
// hands every sample to OnSample (the event stream). Ticks are serialised.
type Recorder struct {
	Sampler *Sampler
	History *History
	// OnSample, if set, receives every sample; it must not block.
	OnSample func(client.Sample)
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	last time.Time
}

// Tick samples now, records the sample and returns it.
func (r *Recorder) Tick(ctx context.Context) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	res, err := r.Sampler.Sample(ctx, now)
	if err != nil {
		return res, err
	}
	r.last = now
	if r.History != nil {
		r.History.Add(res.Sample)
	}
	if r.OnSample != nil {
		r.OnSample(res.Sample)
	}
	return res, nil
}

// Run samples every interval until ctx ends, skipping a tick when one was
// taken on demand (by the agent) less than half an interval ago.
func (r *Recorder) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.mu.Lock()
		recent := !r.last.IsZero() && time.Since(r.last) < interval/2
		r.mu.Unlock()
		if !recent {
			cctx, cancel := context.WithTimeout(ctx, interval)
			if _, err := r.Tick(cctx); err != nil && ctx.Err() == nil && r.Logger != nil {
				r.Logger.Warn("cannot sample telemetry", "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
