package jobs

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/nuvla"
)

// stackWait bounds how long a start or update waits for a stack's
// replicated services to run their tasks before it publishes what runs.
const stackWait = 90 * time.Second

// swarmApp converts a swarm-compatibility application, after checking that
// the box is a swarm manager (nothing is created otherwise).
func (r *Runner) swarmApp(ctx context.Context, in apps.ComposeInput) (*apps.App, error) {
	si, err := r.opts.Recon.Swarm(ctx)
	if err != nil {
		return nil, err
	}
	if !si.Manager {
		return nil, engine.ErrNotSwarmManager
	}
	in.Swarm = true
	app, err := apps.FromCompose(ctx, in)
	if err != nil {
		return nil, err
	}
	return app, nil
}

// convergeSwarm is converge for a swarm app: record the desired state,
// publish the parameters Nuvla expects, deploy the stack and publish its
// services' parameters.
func (r *Runner) convergeSwarm(ctx context.Context, jc *jobContext, d *Deployment, sess *nuvla.Client, verb string, app *apps.App) (string, error) {
	docs, auth, rec, err := r.recordDesired(ctx, jc, d, app, verb)
	if err != nil {
		return "", err
	}
	if err := jc.step("parameters", "hostname, ip, outputs"); err != nil {
		return "", err
	}
	acl := parameterACL(d)
	hostParams, err := publishHostParams(ctx, sess, d.ID, docs.network(), acl)
	if err != nil {
		return "", err
	}
	for _, name := range app.Outputs {
		if err := sess.CreateParameter(ctx, d.ID, nuvla.Parameter{Name: name, Description: "output parameter of the app"}, acl); err != nil {
			return "", err
		}
	}
	if err := jc.step("converge", verb+" stack"); err != nil {
		return "", err
	}
	ss, err := r.opts.Recon.DeployStack(ctx, app, auth, stackWait)
	if err != nil {
		return "", err
	}
	jc.progress(ctx, 80)
	if err := jc.step("ports", "stack"); err != nil {
		return "", err
	}
	params, err := publishStackParams(ctx, sess, d, ss, acl)
	if err != nil {
		return "", err
	}
	rec.Params = hostParams
	for k, v := range params {
		rec.Params[k] = v
	}
	if err := r.opts.Store.PutApp(rec); err != nil {
		return "", fmt.Errorf("record parameters of %s: %w", app.ID, err)
	}
	jc.progress(ctx, 90)
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%s (%d/%d)", s.Name, s.Running, s.Desired))
	}
	return fmt.Sprintf("%s stack %s: %s", verb, app.ID, strings.Join(parts, ", ")), nil
}

// publishStackParams publishes, per service of the stack, what Nuvla's job
// engine publishes for swarm stacks: <svc>.mode, .replicas.running,
// .replicas.desired, .service-id (12 characters), .node-id, .image and
// .<proto>.<target port> (the published port), with node-id = <svc>.
func publishStackParams(ctx context.Context, sess *nuvla.Client, d *Deployment, ss []engine.StackService, acl map[string]any) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range ss {
		id := s.ID
		if len(id) > 12 {
			id = id[:12]
		}
		kv := map[string]string{
			"mode": s.Mode, "replicas.running": strconv.FormatUint(s.Running, 10), "replicas.desired": strconv.FormatUint(s.Desired, 10),
			"service-id": id, "node-id": s.Name, "image": s.Image,
		}
		for _, p := range s.Ports {
			kv[p.Protocol+"."+strconv.Itoa(p.Target)] = strconv.Itoa(p.HostPort)
		}
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := s.Name + "." + k
			out[name] = kv[k]
			p := nuvla.Parameter{Name: name, NodeID: s.Name, Value: nuvla.StrPtr(kv[k]), Description: k + " of swarm service " + s.Name}
			if err := sess.SetParameter(ctx, d.ID, p, acl); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// stackState refreshes the parameters of a running swarm stack.
func (r *Runner) stackState(ctx context.Context, sess *nuvla.Client, d *Deployment, acl map[string]any) (string, error) {
	ss, err := r.opts.Recon.StackServices(ctx, d.UUID())
	if err != nil {
		return "", err
	}
	if len(ss) == 0 {
		return "no services of this stack run on this swarm", nil
	}
	if _, err := publishStackParams(ctx, sess, d, ss, acl); err != nil {
		return "", err
	}
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%s (%d/%d)", s.Name, s.Running, s.Desired))
	}
	return "state: " + strings.Join(parts, ", "), nil
}
