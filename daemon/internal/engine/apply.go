package engine

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/go-connections/nat"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// Apply carries out the planner's actions for app, in order.
//
// Before the first side effect it validates every create: the service
// exists, its spec maps onto Docker, and the servers of its NFS volumes
// answer. So a bad spec or an unreachable NFS server changes nothing.
//
// Apply is idempotent: removing a container that is gone succeeds, and a
// create whose name is taken by a container with the same spec hash adopts
// that container (and starts it).
func (e *Engine) Apply(ctx context.Context, app *apps.App, actions []apps.Action, auth Auth) error {
	if app == nil {
		return fmt.Errorf("apply: nil app")
	}
	specs := make(map[string]*createSpec)
	creates := false
	for _, a := range actions {
		if a.Type != apps.ActionCreate {
			continue
		}
		if _, done := specs[a.Service]; done {
			continue
		}
		svc := app.Service(a.Service)
		if svc == nil {
			return fmt.Errorf("app %s: create: no service %q in the app", app.ID, a.Service)
		}
		spec, err := containerSpec(app, svc)
		if err != nil {
			return fmt.Errorf("app %s service %s: %w", app.ID, svc.Name, err)
		}
		for _, m := range svc.Mounts {
			if err := CheckNFS(ctx, m, nfsPreflightTimeout); err != nil {
				return fmt.Errorf("app %s service %s: %w", app.ID, svc.Name, err)
			}
		}
		specs[a.Service] = spec
		creates = true
	}
	if creates {
		if err := e.preflightApp(ctx, app); err != nil {
			return fmt.Errorf("app %s: %w", app.ID, err)
		}
		if err := e.ensureNetworks(ctx, app, false); err != nil {
			return fmt.Errorf("app %s: %w", app.ID, err)
		}
	}

	// A create starts its container; the planner's start that follows it
	// must not start it a second time (a one-shot that already exited
	// would run again).
	created := make(map[string]string)
	for _, a := range actions {
		var err error
		switch a.Type {
		case apps.ActionRemove:
			err = e.removeContainer(ctx, app, a)
			delete(created, a.Service)
		case apps.ActionCreate:
			var id string
			id, err = e.createAndStart(ctx, app, app.Service(a.Service), specs[a.Service], auth)
			created[a.Service] = id
		case apps.ActionStart:
			if id, ok := created[a.Service]; ok && (a.ContainerID == "" || a.ContainerID == id) {
				e.log.Debug("container started on create, skipping start", "app", app.ID, "service", a.Service)
				continue
			}
			if svc := app.Service(a.Service); svc != nil {
				if err = e.waitDependencies(ctx, app, svc); err != nil {
					break
				}
			}
			err = e.start(ctx, app, a)
		default:
			err = fmt.Errorf("unknown action %q", a.Type)
		}
		if err != nil {
			return fmt.Errorf("app %s service %s: %s: %w", app.ID, a.Service, a.Type, err)
		}
	}
	return nil
}

func (e *Engine) removeContainer(ctx context.Context, app *apps.App, a apps.Action) error {
	id := a.ContainerID
	if id == "" {
		id = apps.ContainerName(app.ID, a.Service)
	}
	err := e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	e.log.Info("removed container", "app", app.ID, "service", a.Service, "container", shortID(id), "reason", a.Reason)
	return nil
}

func (e *Engine) start(ctx context.Context, app *apps.App, a apps.Action) error {
	id := a.ContainerID
	if id == "" {
		id = apps.ContainerName(app.ID, a.Service)
	}
	if err := e.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	e.log.Info("started container", "app", app.ID, "service", a.Service, "container", shortID(id))
	return nil
}

// createAndStart pulls the image, ensures the named volumes, creates (or
// adopts) the container and starts it. It returns the container id.
func (e *Engine) createAndStart(ctx context.Context, app *apps.App, svc *apps.Service, spec *createSpec, auth Auth) (string, error) {
	if err := e.ensureImage(ctx, svc.Image, svc.Registry, auth); err != nil {
		return "", err
	}
	for _, m := range svc.Mounts {
		if m.Type == apps.MountVolume {
			if err := e.ensureVolume(ctx, app, m); err != nil {
				return "", err
			}
		}
	}
	name := apps.ContainerName(app.ID, svc.Name)
	id, err := e.create(ctx, name, spec)
	if err != nil {
		return "", err
	}
	if err := e.connectNetworks(ctx, id, svc); err != nil {
		return "", err
	}
	if err := e.waitDependencies(ctx, app, svc); err != nil {
		return "", err
	}
	if err := e.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return "", fmt.Errorf("start container %s: %w", name, err)
	}
	e.log.Info("started container", "app", app.ID, "service", svc.Name, "container", shortID(id), "image", svc.Image)
	return id, nil
}

// create creates the container, or adopts an existing one of the same name
// and spec hash.
func (e *Engine) create(ctx context.Context, name string, spec *createSpec) (string, error) {
	resp, err := e.cli.ContainerCreate(ctx, spec.config, spec.host, spec.network, nil, name)
	if err == nil {
		for _, w := range resp.Warnings {
			e.log.Warn("docker warning on create", "container", name, "warning", w)
		}
		e.log.Info("created container", "container", name, "id", shortID(resp.ID))
		return resp.ID, nil
	}
	if !IsConflict(err) {
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	ins, ierr := e.cli.ContainerInspect(ctx, name)
	if ierr != nil {
		return "", fmt.Errorf("create container %s: %w (and inspecting the existing one: %v)", name, err, ierr)
	}
	want := spec.config.Labels[apps.LabelSpecHash]
	var have string
	if ins.Config != nil {
		have = ins.Config.Labels[apps.LabelSpecHash]
	}
	if have != want {
		return "", fmt.Errorf("create container %s: the name is taken by container %s with spec hash %q, want %q: %w",
			name, shortID(ins.ID), have, want, err)
	}
	e.log.Info("container exists with the same spec, adopting it", "container", name, "id", shortID(ins.ID))
	return ins.ID, nil
}

// createSpec is a service translated into Docker's terms.
type createSpec struct {
	config  *container.Config
	host    *container.HostConfig
	network *network.NetworkingConfig
}

// containerSpec maps a service onto Docker's container and host config.
func containerSpec(app *apps.App, svc *apps.Service) (*createSpec, error) {
	if svc.Image == "" {
		return nil, fmt.Errorf("no image")
	}
	cfg := &container.Config{
		Image:  svc.Image,
		Env:    svc.EnvList(),
		Labels: app.Labels(svc),
		User:   svc.User,
	}
	if len(svc.Command) > 0 {
		cfg.Cmd = strslice.StrSlice(svc.Command)
	}
	if len(svc.Entrypoint) > 0 {
		cfg.Entrypoint = strslice.StrSlice(svc.Entrypoint)
	}
	rp, err := restartPolicy(svc.Restart)
	if err != nil {
		return nil, err
	}
	host := &container.HostConfig{RestartPolicy: rp}
	if svc.CPUs < 0 || svc.MemoryMiB < 0 {
		return nil, fmt.Errorf("negative resource limit (cpus %v, memory %d MiB)", svc.CPUs, svc.MemoryMiB)
	}
	host.NanoCPUs = int64(svc.CPUs * 1e9)
	host.Memory = svc.MemoryMiB * 1024 * 1024
	if err := composeSpec(svc, cfg, host); err != nil {
		return nil, err
	}

	if len(svc.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		host.PortBindings = nat.PortMap{}
	}
	for _, p := range svc.Ports {
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		switch proto {
		case "tcp", "udp", "sctp":
		default:
			return nil, fmt.Errorf("port %d: unknown protocol %q", p.Target, p.Protocol)
		}
		if p.Target <= 0 || p.Target > 65535 || p.Published < 0 || p.Published > 65535 {
			return nil, fmt.Errorf("port %d:%d/%s out of range", p.Published, p.Target, proto)
		}
		port, err := nat.NewPort(proto, strconv.Itoa(p.Target))
		if err != nil {
			return nil, fmt.Errorf("port %d/%s: %w", p.Target, proto, err)
		}
		cfg.ExposedPorts[port] = struct{}{}
		hb := nat.PortBinding{HostIP: p.HostIP}
		if p.Published > 0 {
			hb.HostPort = strconv.Itoa(p.Published)
		}
		host.PortBindings[port] = append(host.PortBindings[port], hb)
	}

	for _, m := range svc.Mounts {
		dm := mount.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		switch m.Type {
		case apps.MountBind:
			if m.Source == "" {
				return nil, fmt.Errorf("bind mount %s: no source", m.Target)
			}
			if m.CreateHostPath {
				// Binds, unlike Mounts, create a missing source directory,
				// as docker compose's short syntax does.
				if m.Target == "" {
					return nil, fmt.Errorf("bind mount of %q: no target", m.Source)
				}
				b := m.Source + ":" + m.Target
				if m.ReadOnly {
					b += ":ro"
				}
				host.Binds = append(host.Binds, b)
				continue
			}
			dm.Type = mount.TypeBind
		case apps.MountVolume:
			dm.Type = mount.TypeVolume
		case apps.MountTmpfs:
			dm.Type = mount.TypeTmpfs
			dm.Source = ""
			if m.TmpfsSizeBytes > 0 || m.TmpfsMode != 0 {
				dm.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: m.TmpfsSizeBytes, Mode: os.FileMode(m.TmpfsMode)}
			}
		default:
			return nil, fmt.Errorf("mount %s: unknown type %q", m.Target, m.Type)
		}
		if m.Target == "" {
			return nil, fmt.Errorf("%s mount of %q: no target", m.Type, m.Source)
		}
		host.Mounts = append(host.Mounts, dm)
	}
	sp := &createSpec{config: cfg, host: host}
	if svc.NetworkMode == "" && len(svc.Networks) > 0 {
		first := svc.Networks[0]
		host.NetworkMode = container.NetworkMode(first.Name)
		sp.network = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first.Name: endpointSettings(first)}}
	}
	return sp, nil
}

// restartPolicy maps Nuvla's restart conditions onto Docker's policies.
func restartPolicy(r apps.RestartPolicy) (container.RestartPolicy, error) {
	switch r.Condition {
	case "", apps.RestartNone:
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}, nil
	case apps.RestartOnFailure:
		if r.MaxAttempts < 0 {
			return container.RestartPolicy{}, fmt.Errorf("restart policy on-failure: negative max attempts %d", r.MaxAttempts)
		}
		return container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: r.MaxAttempts}, nil
	case apps.RestartAny:
		return container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}, nil
	case apps.RestartAlways:
		return container.RestartPolicy{Name: container.RestartPolicyAlways}, nil
	default:
		return container.RestartPolicy{}, fmt.Errorf("unknown restart condition %q", r.Condition)
	}
}

func shortID(id string) string {
	if len(id) == 64 {
		return id[:12]
	}
	return id
}
