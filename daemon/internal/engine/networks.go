package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// defaultDependencyTimeout bounds the wait for a dependency to become
// healthy (or to complete) before a dependent service starts.
const defaultDependencyTimeout = 5 * time.Minute

// dependencyPoll is how often the dependency wait inspects the container.
const dependencyPoll = 250 * time.Millisecond

// preflightApp checks, before anything is created, what an app needs from
// Docker that berth does not create: its external networks and volumes.
func (e *Engine) preflightApp(ctx context.Context, app *apps.App) error {
	var errs []error
	for _, n := range app.Networks {
		if !n.External {
			continue
		}
		if _, err := e.cli.NetworkInspect(ctx, n.Name, network.InspectOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("external network %s (%s): %w", n.Name, n.Key, err))
		}
	}
	for _, v := range app.Volumes {
		if !v.External {
			continue
		}
		if _, err := e.cli.VolumeInspect(ctx, v.Name); err != nil {
			errs = append(errs, fmt.Errorf("external volume %s (%s): %w", v.Name, v.Key, err))
		}
	}
	return errors.Join(errs...)
}

// ensureNetworks creates the app's own networks that do not exist yet,
// labelled so that RemoveApp finds them and docker compose recognises them.
// For a Swarm stack (stack true) they are swarm-scoped, overlay by default,
// and carry the stack's namespace label instead of the compose ones.
func (e *Engine) ensureNetworks(ctx context.Context, app *apps.App, stack bool) error {
	for _, n := range app.Networks {
		if n.External {
			continue
		}
		if _, err := e.cli.NetworkInspect(ctx, n.Name, network.InspectOptions{}); err == nil {
			continue
		} else if !IsNotFound(err) {
			return fmt.Errorf("inspect network %s: %w", n.Name, err)
		}
		if _, err := e.cli.NetworkCreate(ctx, n.Name, networkOptions(app, n, stack)); err != nil {
			if IsConflict(err) {
				continue // created concurrently
			}
			return fmt.Errorf("create network %s: %w", n.Name, err)
		}
		e.log.Info("created network", "app", app.ID, "network", n.Name, "stack", stack)
	}
	return nil
}

// networkOptions maps one of the app's networks onto Docker's create options.
func networkOptions(app *apps.App, n apps.Network, stack bool) network.CreateOptions {
	labels := map[string]string{apps.LabelApp: app.ID, apps.LabelManaged: apps.ManagedValue}
	if stack {
		labels[LabelStackNamespace] = app.ID
	} else {
		labels[apps.LabelComposeProject] = app.ID
	}
	for k, v := range n.Labels {
		if stack && (k == apps.LabelComposeProject || k == apps.LabelComposeNetwork) {
			continue
		}
		labels[k] = v
	}
	opts := network.CreateOptions{
		Driver:     n.Driver,
		Options:    n.DriverOpts,
		Internal:   n.Internal,
		Attachable: n.Attachable,
		Labels:     labels,
	}
	if stack {
		opts.Scope = "swarm"
		if opts.Driver == "" {
			opts.Driver = "overlay"
		}
	}
	if n.EnableIPv6 {
		v6 := true
		opts.EnableIPv6 = &v6
	}
	if len(n.Subnets) > 0 {
		opts.IPAM = &network.IPAM{Driver: "default"}
		for _, sub := range n.Subnets {
			opts.IPAM.Config = append(opts.IPAM.Config, network.IPAMConfig{Subnet: sub})
		}
	}
	return opts
}

// removeNetworks removes the networks labelled with the app. A network
// still used by a container of another app stays, with a log line.
func (e *Engine) removeNetworks(ctx context.Context, appID string) error {
	nets, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", apps.LabelApp+"="+appID))})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	var errs []error
	for _, n := range nets {
		if err := e.cli.NetworkRemove(ctx, n.ID); err != nil && !IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		e.log.Info("removed network", "app", appID, "network", n.Name)
	}
	return errors.Join(errs...)
}

// endpointSettings is how a service joins one of its networks.
func endpointSettings(sn apps.ServiceNetwork) *network.EndpointSettings {
	es := &network.EndpointSettings{Aliases: append([]string(nil), sn.Aliases...)}
	if sn.IPv4Address != "" {
		es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: sn.IPv4Address}
	}
	return es
}

// connectNetworks joins the container to the service's networks after the
// first one (Docker API 1.41 creates a container on one network only).
func (e *Engine) connectNetworks(ctx context.Context, id string, svc *apps.Service) error {
	if svc.NetworkMode != "" || len(svc.Networks) < 2 {
		return nil
	}
	ins, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return fmt.Errorf("inspect container %s: %w", shortID(id), err)
	}
	for _, sn := range svc.Networks[1:] {
		if ins.NetworkSettings != nil {
			if _, ok := ins.NetworkSettings.Networks[sn.Name]; ok {
				continue
			}
		}
		if err := e.cli.NetworkConnect(ctx, sn.Name, id, endpointSettings(sn)); err != nil {
			return fmt.Errorf("connect container %s to network %s: %w", shortID(id), sn.Name, err)
		}
	}
	return nil
}

// waitDependencies waits until every dependency of svc in the app meets its
// condition: service_healthy (its health check passes), or
// service_completed_successfully (it exited with code 0). service_started
// needs no wait: the planner orders creates so dependencies start first.
func (e *Engine) waitDependencies(ctx context.Context, app *apps.App, svc *apps.Service) error {
	for _, d := range svc.DependsOn {
		if d.Condition != apps.ConditionHealthy && d.Condition != apps.ConditionCompleted {
			continue
		}
		if app.Service(d.Service) == nil {
			continue
		}
		if err := e.waitDependency(ctx, app, svc.Name, d); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) waitDependency(ctx context.Context, app *apps.App, dependent string, d apps.Dependency) error {
	timeout := e.depTimeout
	if timeout <= 0 {
		timeout = defaultDependencyTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	name := apps.ContainerName(app.ID, d.Service)
	t := time.NewTicker(dependencyPoll)
	defer t.Stop()
	last := "no container yet"
	logged := false
	for {
		ins, err := e.cli.ContainerInspect(wctx, name)
		switch {
		case err == nil && ins.ContainerJSONBase != nil && ins.State != nil:
			ok, state, ferr := dependencyMet(d.Condition, ins.State)
			if ferr != nil {
				return fmt.Errorf("service %s depends on %s (%s): %w", dependent, d.Service, d.Condition, ferr)
			}
			if ok {
				e.log.Info("dependency met", "app", app.ID, "service", dependent, "dependency", d.Service, "condition", d.Condition)
				return nil
			}
			last = state
		case err != nil && !IsNotFound(err) && wctx.Err() == nil:
			return fmt.Errorf("service %s depends on %s: inspect: %w", dependent, d.Service, err)
		}
		if !logged {
			e.log.Info("waiting for dependency", "app", app.ID, "service", dependent, "dependency", d.Service, "condition", d.Condition)
			logged = true
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("service %s depends on %s being %s, but after %s it is %s",
				dependent, d.Service, conditionWord(d.Condition), timeout, last)
		case <-t.C:
		}
	}
}

// dependencyMet says whether a container state satisfies a condition, a
// short description of the state otherwise, and an error when it never
// will.
func dependencyMet(cond string, st *container.State) (bool, string, error) {
	switch cond {
	case apps.ConditionHealthy:
		if st.Health == nil {
			return false, "", fmt.Errorf("the dependency has no health check")
		}
		switch st.Health.Status {
		case container.Healthy:
			return true, "", nil
		case container.Unhealthy:
			return false, "", fmt.Errorf("the dependency is unhealthy%s", lastProbe(st.Health))
		}
		if st.Status == container.StateExited || st.Status == container.StateDead {
			return false, "", fmt.Errorf("the dependency exited with code %d before it became healthy", st.ExitCode)
		}
		return false, "health " + string(st.Health.Status), nil
	case apps.ConditionCompleted:
		if st.Status == container.StateExited || st.Status == container.StateDead {
			if st.ExitCode == 0 {
				return true, "", nil
			}
			return false, "", fmt.Errorf("the dependency exited with code %d", st.ExitCode)
		}
		return false, string(st.Status), nil
	}
	return true, "", nil
}

func lastProbe(h *container.Health) string {
	if h == nil || len(h.Log) == 0 {
		return ""
	}
	l := h.Log[len(h.Log)-1]
	out := l.Output
	if len(out) > 200 {
		out = out[:200] + "..."
	}
	return fmt.Sprintf(" (last check exited %d: %q)", l.ExitCode, out)
}

func conditionWord(cond string) string {
	if cond == apps.ConditionCompleted {
		return "completed successfully"
	}
	return "healthy"
}
