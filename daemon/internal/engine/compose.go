package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// composeSpec maps the service fields compose files use (beyond those of a
// Nuvla component) onto Docker's container and host config.
func composeSpec(svc *apps.Service, cfg *container.Config, host *container.HostConfig) error {
	if svc.MemoryBytes < 0 || svc.MemoryReservationBytes < 0 || svc.PidsLimit < 0 || svc.ShmSizeBytes < 0 {
		return fmt.Errorf("negative resource limit")
	}
	if svc.MemoryBytes > 0 {
		host.Memory = svc.MemoryBytes
	}
	host.MemoryReservation = svc.MemoryReservationBytes
	if svc.PidsLimit > 0 {
		pl := svc.PidsLimit
		host.PidsLimit = &pl
	}
	cfg.WorkingDir = svc.WorkingDir
	cfg.Hostname = svc.Hostname
	cfg.Tty = svc.Tty
	cfg.OpenStdin = svc.StdinOpen
	cfg.StopSignal = svc.StopSignal
	if svc.StopGracePeriod > 0 {
		t := svc.StopGracePeriod
		cfg.StopTimeout = &t
	}
	if h := svc.Healthcheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test:        append([]string(nil), h.Test...),
			Interval:    time.Duration(h.Interval),
			Timeout:     time.Duration(h.Timeout),
			StartPeriod: time.Duration(h.StartPeriod),
			Retries:     h.Retries,
		}
	}
	for _, e := range svc.Expose {
		proto, port := "tcp", e
		if p, pr, ok := strings.Cut(e, "/"); ok {
			port, proto = p, pr
		}
		np, err := nat.NewPort(proto, port)
		if err != nil {
			return fmt.Errorf("expose %q: %w", e, err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
		}
		cfg.ExposedPorts[np] = struct{}{}
	}

	host.CapAdd = append(host.CapAdd, svc.CapAdd...)
	host.CapDrop = append(host.CapDrop, svc.CapDrop...)
	host.Privileged = svc.Privileged
	host.ExtraHosts = append(host.ExtraHosts, svc.ExtraHosts...)
	host.DNS = append(host.DNS, svc.DNS...)
	host.SecurityOpt = append(host.SecurityOpt, svc.SecurityOpt...)
	host.GroupAdd = append(host.GroupAdd, svc.GroupAdd...)
	host.ReadonlyRootfs = svc.ReadOnly
	host.ShmSize = svc.ShmSizeBytes
	if svc.Init {
		t := true
		host.Init = &t
	}
	if len(svc.Sysctls) > 0 {
		host.Sysctls = make(map[string]string, len(svc.Sysctls))
		for k, v := range svc.Sysctls {
			host.Sysctls[k] = v
		}
	}
	if l := svc.Logging; l != nil {
		host.LogConfig = container.LogConfig{Type: l.Driver, Config: l.Options}
	}
	for _, d := range svc.Devices {
		if d.Host == "" {
			return fmt.Errorf("device with no host path")
		}
		dm := container.DeviceMapping{PathOnHost: d.Host, PathInContainer: d.Container, CgroupPermissions: d.Permissions}
		if dm.PathInContainer == "" {
			dm.PathInContainer = d.Host
		}
		if dm.CgroupPermissions == "" {
			dm.CgroupPermissions = "rwm"
		}
		host.Devices = append(host.Devices, dm)
	}
	if svc.NetworkMode != "" {
		if len(svc.Networks) > 0 {
			return fmt.Errorf("network_mode %q and networks are exclusive", svc.NetworkMode)
		}
		host.NetworkMode = container.NetworkMode(svc.NetworkMode)
		if svc.NetworkMode == "host" && len(svc.Ports) > 0 {
			return fmt.Errorf("network_mode host publishes no ports: remove ports")
		}
	}
	return nil
}
