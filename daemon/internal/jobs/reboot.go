package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errRebootDisabled is the refusal of a box that does not allow reboots.
var errRebootDisabled = errors.New("reboot is disabled on this box: set host.allow-reboot = true in " + ConfigFile)

// rebootBox reports the job done, then reboots the host after a delay, as
// NuvlaEdge does: the job returns first so that its SUCCESS reaches Nuvla.
// A berthd killed in between has journaled the success, so after a restart
// it reports the job and does not reboot again.
func (r *Runner) rebootBox(ctx context.Context, jc *jobContext) (string, error) {
	if _, err := boxTarget(jc.job); err != nil {
		return "", err
	}
	if err := decodePayload(jc.job.Payload, &struct{}{}); err != nil {
		return "", err
	}
	h := r.opts.Host
	if !h.AllowReboot {
		return "", errRebootDisabled
	}
	jc.progress(ctx, 10)
	if err := jc.step("reboot", "scheduled"); err != nil {
		return "", err
	}
	delay := max(h.RebootDelay, 0)
	jc.afterSuccess(func(ctx context.Context) {
		jc.log.Warn("rebooting the host as the control plane asked", "in", delay)
		if delay > 0 {
			select {
			case <-ctx.Done():
				// berthd is stopping: the job promised a reboot, keep it.
			case <-time.After(delay):
			}
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := h.Reboot(rctx); err != nil {
			jc.log.Error("cannot reboot the host", "err", err)
		}
	})
	return fmt.Sprintf("rebooting the host in %s", delay), nil
}
