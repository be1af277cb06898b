package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// Labels docker stack deploy puts on a stack's objects.
const (
	LabelStackNamespace = "com.docker.stack.namespace"
	LabelStackImage     = "com.docker.stack.image"
)

// stackRemoveWait bounds the wait for a removed stack's containers to go
// before its networks and volumes are removed.
const stackRemoveWait = 60 * time.Second

// ErrNotSwarmManager says a swarm stack cannot run here, and how to fix it.
var ErrNotSwarmManager = errors.New("the Docker engine of this box is not a Swarm manager, and the module asks for swarm " +
	"compatibility: enable Swarm with `docker swarm init` (or join this node to a swarm as a manager), then start the deployment again")

// SwarmInfo is the box's place in a swarm, as the commission reports it.
// The join tokens are secrets: never log a SwarmInfo.
type SwarmInfo struct {
	// Manager is true when this node is a swarm manager; the other fields
	// are set only then.
	Manager      bool
	NodeID       string
	ClusterID    string
	TokenManager string
	TokenWorker  string
	Managers     []string
	Workers      []string
}

// Swarm says whether the engine is a swarm manager and, if so, returns the
// cluster's identity, join tokens and nodes.
func (e *Engine) Swarm(ctx context.Context) (SwarmInfo, error) {
	info, err := e.cli.Info(ctx)
	if err != nil {
		return SwarmInfo{}, fmt.Errorf("docker info: %w", err)
	}
	if !info.Swarm.ControlAvailable {
		return SwarmInfo{}, nil
	}
	si := SwarmInfo{Manager: true, NodeID: info.Swarm.NodeID}
	sw, err := e.cli.SwarmInspect(ctx)
	if err != nil {
		return SwarmInfo{}, fmt.Errorf("inspect swarm: %w", err)
	}
	si.ClusterID = sw.ID
	si.TokenManager, si.TokenWorker = sw.JoinTokens.Manager, sw.JoinTokens.Worker
	nodes, err := e.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return SwarmInfo{}, fmt.Errorf("list swarm nodes: %w", err)
	}
	for _, n := range nodes {
		if n.Spec.Role == swarm.NodeRoleManager {
			si.Managers = append(si.Managers, n.ID)
		} else {
			si.Workers = append(si.Workers, n.ID)
		}
	}
	sort.Strings(si.Managers)
	sort.Strings(si.Workers)
	return si, nil
}

// StackService is one service of a stack as Swarm runs it.
type StackService struct {
	// Name is the compose service name (without the "<namespace>_" prefix).
	Name     string
	ID       string
	Image    string
	Mode     string
	Desired  uint64
	Running  uint64
	Ports    []apps.PortBinding
	SpecHash string
}

// DeployStack deploys a swarm app as a stack, as `docker stack deploy`
// does: namespace = app id, services and networks named <namespace>_<name>
// and labelled with the namespace. Services whose spec did not change are
// left alone; services the app no longer has are removed.
func (e *Engine) DeployStack(ctx context.Context, app *apps.App, auth Auth) error {
	if app == nil || app.Kind != apps.KindNuvlaSwarm {
		return fmt.Errorf("deploy stack: not a swarm app")
	}
	si, err := e.Swarm(ctx)
	if err != nil {
		return err
	}
	if !si.Manager {
		return ErrNotSwarmManager
	}
	ns := app.ID
	specs := make([]swarm.ServiceSpec, 0, len(app.Services))
	for i := range app.Services {
		spec, err := stackServiceSpec(app, &app.Services[i])
		if err != nil {
			return fmt.Errorf("stack %s service %s: %w", ns, app.Services[i].Name, err)
		}
		specs = append(specs, spec)
	}
	if err := e.preflightApp(ctx, app); err != nil {
		return fmt.Errorf("stack %s: %w", ns, err)
	}
	for _, svc := range app.Services {
		for _, m := range svc.Mounts {
			if err := CheckNFS(ctx, m, nfsPreflightTimeout); err != nil {
				return fmt.Errorf("stack %s service %s: %w", ns, svc.Name, err)
			}
		}
	}
	if err := e.ensureNetworks(ctx, app, true); err != nil {
		return err
	}
	existing, err := e.stackServices(ctx, ns)
	if err != nil {
		return err
	}
	byName := map[string]swarm.Service{}
	for _, s := range existing {
		byName[s.Spec.Name] = s
	}
	for i, spec := range specs {
		svc := &app.Services[i]
		if err := e.ensureImage(ctx, svc.Image, svc.Registry, auth); err != nil {
			// A node without the image pulls it itself; the swarm
			// reports a task that cannot.
			e.log.Warn("cannot pull the image before deploying the service", "stack", ns, "service", svc.Name, "err", err)
		}
		encAuth := ""
		if c, ok := auth.For(svc.Image); ok {
			enc, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: c.Username, Password: c.Password, ServerAddress: c.ServerAddress})
			if err != nil {
				return fmt.Errorf("stack %s service %s: encode registry credentials: %w", ns, svc.Name, err)
			}
			encAuth = enc
		}
		cur, ok := byName[spec.Name]
		delete(byName, spec.Name)
		if !ok {
			resp, err := e.cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{EncodedRegistryAuth: encAuth})
			if err != nil {
				return fmt.Errorf("stack %s: create service %s: %w", ns, spec.Name, err)
			}
			for _, w := range resp.Warnings {
				e.log.Warn("docker warning on service create", "service", spec.Name, "warning", w)
			}
			e.log.Info("created swarm service", "stack", ns, "service", spec.Name, "id", shortID(resp.ID))
			continue
		}
		if cur.Spec.Labels[apps.LabelSpecHash] == spec.Labels[apps.LabelSpecHash] {
			continue
		}
		resp, err := e.cli.ServiceUpdate(ctx, cur.ID, cur.Version, spec, swarm.ServiceUpdateOptions{EncodedRegistryAuth: encAuth})
		if err != nil {
			return fmt.Errorf("stack %s: update service %s: %w", ns, spec.Name, err)
		}
		for _, w := range resp.Warnings {
			e.log.Warn("docker warning on service update", "service", spec.Name, "warning", w)
		}
		e.log.Info("updated swarm service", "stack", ns, "service", spec.Name)
	}
	for name, s := range byName {
		if err := e.cli.ServiceRemove(ctx, s.ID); err != nil && !IsNotFound(err) {
			return fmt.Errorf("stack %s: remove service %s: %w", ns, name, err)
		}
		e.log.Info("removed swarm service no longer in the stack", "stack", ns, "service", name)
	}
	return nil
}

// StackServices returns the services of a stack with their task counts and
// published ports.
func (e *Engine) StackServices(ctx context.Context, ns string) ([]StackService, error) {
	ss, err := e.stackServices(ctx, ns)
	if err != nil {
		return nil, err
	}
	out := make([]StackService, 0, len(ss))
	for _, s := range ss {
		st := StackService{
			Name:     strings.TrimPrefix(s.Spec.Name, ns+"_"),
			ID:       s.ID,
			Image:    s.Spec.Labels[LabelStackImage],
			SpecHash: s.Spec.Labels[apps.LabelSpecHash],
			Mode:     "replicated",
		}
		if s.Spec.Mode.Global != nil {
			st.Mode = "global"
		}
		if s.ServiceStatus != nil {
			st.Desired, st.Running = s.ServiceStatus.DesiredTasks, s.ServiceStatus.RunningTasks
		}
		for _, p := range s.Endpoint.Ports {
			if p.PublishedPort == 0 {
				continue
			}
			st.Ports = append(st.Ports, apps.PortBinding{Target: int(p.TargetPort), Protocol: string(p.Protocol), HostPort: int(p.PublishedPort)})
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// WaitStack waits until every replicated service of the stack runs its
// desired tasks, or the context ends; it returns the last observation.
func (e *Engine) WaitStack(ctx context.Context, ns string) ([]StackService, error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		ss, err := e.StackServices(ctx, ns)
		if err != nil {
			return nil, err
		}
		done := true
		for _, s := range ss {
			if s.Desired == 0 && s.Mode == "replicated" {
				continue
			}
			if s.Running < s.Desired || s.Desired == 0 {
				done = false
			}
		}
		if done {
			return ss, nil
		}
		select {
		case <-ctx.Done():
			return ss, nil
		case <-t.C:
		}
	}
}

func (e *Engine) stackServices(ctx context.Context, ns string) ([]swarm.Service, error) {
	ss, err := e.cli.ServiceList(ctx, swarm.ServiceListOptions{
		Filters: filters.NewArgs(filters.Arg("label", LabelStackNamespace+"="+ns)),
		Status:  true,
	})
	if err != nil {
		return nil, fmt.Errorf("list services of stack %s: %w", ns, err)
	}
	return ss, nil
}

// removeStack removes a stack's services, waits for their containers to
// go, then removes its networks. On a node that is not a swarm manager
// there is no stack to remove.
func (e *Engine) removeStack(ctx context.Context, ns string) error {
	info, err := e.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("docker info: %w", err)
	}
	if !info.Swarm.ControlAvailable {
		return nil
	}
	ss, err := e.stackServices(ctx, ns)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range ss {
		if err := e.cli.ServiceRemove(ctx, s.ID); err != nil && !IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove service %s: %w", s.Spec.Name, err))
			continue
		}
		e.log.Info("removed swarm service", "stack", ns, "service", s.Spec.Name)
	}
	nsLabel := filters.NewArgs(filters.Arg("label", LabelStackNamespace+"="+ns))
	nets, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: nsLabel})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks of stack %s: %w", ns, err))...)
	}
	if len(ss) == 0 && len(nets) == 0 {
		return errors.Join(errs...)
	}
	// Task containers leave after their service; networks and volumes
	// are in use until they have.
	wctx, cancel := context.WithTimeout(ctx, stackRemoveWait)
	defer cancel()
	for {
		cs, err := e.cli.ContainerList(wctx, container.ListOptions{All: true, Filters: nsLabel})
		if err != nil || len(cs) == 0 {
			break
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-wctx.Done():
		case <-t.C:
		}
		t.Stop()
		if wctx.Err() != nil {
			break
		}
	}
	for _, n := range nets {
		if err := e.cli.NetworkRemove(ctx, n.ID); err != nil && !IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		e.log.Info("removed stack network", "stack", ns, "network", n.Name)
	}
	return errors.Join(errs...)
}

// stackServiceSpec maps a service onto a Swarm service spec, as docker
// stack deploy does.
func stackServiceSpec(app *apps.App, svc *apps.Service) (swarm.ServiceSpec, error) {
	if svc.Image == "" {
		return swarm.ServiceSpec{}, fmt.Errorf("no image")
	}
	ns := app.ID
	sw := svc.Swarm
	if sw == nil {
		sw = &apps.SwarmDeploy{Mode: "replicated", Replicas: 1}
	}
	svcLabels := map[string]string{LabelStackNamespace: ns, LabelStackImage: svc.Image,
		apps.LabelApp: app.ID, apps.LabelManaged: apps.ManagedValue, apps.LabelSpecHash: svc.SpecHash()}
	for k, v := range sw.Labels {
		svcLabels[k] = v
	}
	// Task containers carry the service's own labels and the namespace,
	// never berth's: the container reconciler must not adopt them.
	ctrLabels := map[string]string{LabelStackNamespace: ns}
	for k, v := range svc.Labels {
		if !strings.HasPrefix(k, "com.docker.compose.") {
			ctrLabels[k] = v
		}
	}
	cs := &swarm.ContainerSpec{
		Image:      svc.Image,
		Labels:     ctrLabels,
		Command:    svc.Entrypoint,
		Args:       svc.Command,
		Hostname:   svc.Hostname,
		Env:        svc.EnvList(),
		Dir:        svc.WorkingDir,
		User:       svc.User,
		Groups:     svc.GroupAdd,
		TTY:        svc.Tty,
		OpenStdin:  svc.StdinOpen,
		ReadOnly:   svc.ReadOnly,
		StopSignal: svc.StopSignal,
		Sysctls:    svc.Sysctls,
	}
	if len(svc.CapAdd) > 0 || len(svc.CapDrop) > 0 {
		cs.CapabilityAdd, cs.CapabilityDrop = svc.CapAdd, svc.CapDrop
	}
	if svc.Init {
		t := true
		cs.Init = &t
	}
	if svc.StopGracePeriod > 0 {
		d := time.Duration(svc.StopGracePeriod) * time.Second
		cs.StopGracePeriod = &d
	}
	if h := svc.Healthcheck; h != nil {
		cs.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: time.Duration(h.Interval), Timeout: time.Duration(h.Timeout),
			StartPeriod: time.Duration(h.StartPeriod), Retries: h.Retries}
	}
	for _, eh := range svc.ExtraHosts {
		host, ip, ok := strings.Cut(eh, ":")
		if !ok {
			return swarm.ServiceSpec{}, fmt.Errorf("extra host %q: want host:ip", eh)
		}
		cs.Hosts = append(cs.Hosts, ip+" "+host)
	}
	if len(svc.DNS) > 0 {
		cs.DNSConfig = &swarm.DNSConfig{Nameservers: svc.DNS}
	}
	for _, m := range svc.Mounts {
		dm := mount.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		switch m.Type {
		case apps.MountBind:
			dm.Type = mount.TypeBind
		case apps.MountVolume:
			dm.Type = mount.TypeVolume
			if m.Source != "" {
				vl := map[string]string{LabelStackNamespace: ns, apps.LabelApp: app.ID, apps.LabelManaged: apps.ManagedValue}
				dm.VolumeOptions = &mount.VolumeOptions{Labels: vl}
				if decl := app.Volume(m.Source); decl != nil && !decl.External {
					for k, v := range decl.Labels {
						if !strings.HasPrefix(k, "com.docker.compose.") {
							vl[k] = v
						}
					}
					if decl.Driver != "" || len(decl.DriverOpts) > 0 {
						dm.VolumeOptions.DriverConfig = &mount.Driver{Name: decl.Driver, Options: decl.DriverOpts}
					}
				}
			}
		case apps.MountTmpfs:
			dm.Type = mount.TypeTmpfs
			dm.Source = ""
			if m.TmpfsSizeBytes > 0 || m.TmpfsMode != 0 {
				dm.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: m.TmpfsSizeBytes}
			}
		default:
			return swarm.ServiceSpec{}, fmt.Errorf("mount %s: unknown type %q", m.Target, m.Type)
		}
		cs.Mounts = append(cs.Mounts, dm)
	}

	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: ns + "_" + svc.Name, Labels: svcLabels},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: cs},
	}
	res := &swarm.ResourceRequirements{}
	if svc.CPUs > 0 || svc.MemoryBytes > 0 || svc.MemoryMiB > 0 || svc.PidsLimit > 0 {
		res.Limits = &swarm.Limit{NanoCPUs: int64(svc.CPUs * 1e9), MemoryBytes: svc.MemoryBytes, Pids: svc.PidsLimit}
		if res.Limits.MemoryBytes == 0 {
			res.Limits.MemoryBytes = svc.MemoryMiB * 1024 * 1024
		}
	}
	if svc.MemoryReservationBytes > 0 {
		res.Reservations = &swarm.Resources{MemoryBytes: svc.MemoryReservationBytes}
	}
	if res.Limits != nil || res.Reservations != nil {
		spec.TaskTemplate.Resources = res
	}
	rp := &swarm.RestartPolicy{}
	switch svc.Restart.Condition {
	case apps.RestartNone:
		rp.Condition = swarm.RestartPolicyConditionNone
	case apps.RestartOnFailure:
		rp.Condition = swarm.RestartPolicyConditionOnFailure
		if svc.Restart.MaxAttempts > 0 {
			n := uint64(svc.Restart.MaxAttempts)
			rp.MaxAttempts = &n
		}
	default:
		rp.Condition = swarm.RestartPolicyConditionAny
	}
	spec.TaskTemplate.RestartPolicy = rp
	if l := svc.Logging; l != nil && l.Driver != "" {
		spec.TaskTemplate.LogDriver = &swarm.Driver{Name: l.Driver, Options: l.Options}
	}
	if len(sw.Constraints) > 0 {
		spec.TaskTemplate.Placement = &swarm.Placement{Constraints: sw.Constraints}
	}
	for _, sn := range svc.Networks {
		spec.TaskTemplate.Networks = append(spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: sn.Name, Aliases: sn.Aliases})
	}
	if sw.Mode == "global" {
		spec.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
	} else {
		r := sw.Replicas
		spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &r}}
	}
	if len(svc.Ports) > 0 {
		spec.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP}
		for _, p := range svc.Ports {
			spec.EndpointSpec.Ports = append(spec.EndpointSpec.Ports, swarm.PortConfig{
				Protocol: swarm.PortConfigProtocol(p.Protocol), TargetPort: uint32(p.Target), PublishedPort: uint32(p.Published),
				PublishMode: swarm.PortConfigPublishModeIngress,
			})
		}
	}
	return spec, nil
}

// SwarmServices lists every swarm service with its task counts, for
// telemetry (coe-resources.docker.services); it returns nothing, and no
// error, when the engine is not a swarm manager.
func (e *Engine) SwarmServices(ctx context.Context) ([]swarm.Service, error) {
	info, err := e.cli.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker info: %w", err)
	}
	if !info.Swarm.ControlAvailable {
		return nil, nil
	}
	ss, err := e.cli.ServiceList(ctx, swarm.ServiceListOptions{Status: true})
	if err != nil {
		return nil, fmt.Errorf("list swarm services: %w", err)
	}
	return ss, nil
}
