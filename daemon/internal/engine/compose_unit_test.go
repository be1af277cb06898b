package engine

import (
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

func TestContainerSpecCompose(t *testing.T) {
	app := &apps.App{ID: "p", Kind: apps.KindNuvlaApplication}
	svc := apps.Service{
		Name: "web", Image: "nginx", Restart: apps.RestartPolicy{Condition: apps.RestartAlways},
		MemoryMiB: 1, MemoryBytes: 3 << 20, MemoryReservationBytes: 1 << 20, PidsLimit: 50,
		WorkingDir: "/srv", Hostname: "h", Tty: true, StdinOpen: true, StopSignal: "SIGQUIT", StopGracePeriod: 7,
		Healthcheck: &apps.Healthcheck{Test: []string{"CMD", "true"}, Interval: int64(time.Second), Retries: 3},
		Expose:      []string{"9000", "53/udp"},
		CapAdd:      []string{"NET_ADMIN"}, CapDrop: []string{"ALL"}, Privileged: true,
		ExtraHosts: []string{"db:10.0.0.1"}, DNS: []string{"1.1.1.1"}, SecurityOpt: []string{"no-new-privileges"},
		GroupAdd: []string{"dialout"}, ReadOnly: true, ShmSizeBytes: 64 << 20, Init: true,
		Sysctls: map[string]string{"net.core.somaxconn": "1024"},
		Logging: &apps.Logging{Driver: "json-file", Options: map[string]string{"max-size": "1m"}},
		Devices: []apps.Device{{Host: "/dev/ttyUSB0"}},
		Networks: []apps.ServiceNetwork{
			{Name: "p_back", Aliases: []string{"web", "www"}, IPv4Address: "172.30.0.2"},
			{Name: "p_front", Aliases: []string{"web"}},
		},
		Mounts: []apps.Mount{
			{Type: apps.MountBind, Source: "/srv/conf", Target: "/conf", ReadOnly: true, CreateHostPath: true},
			{Type: apps.MountTmpfs, Target: "/cache", TmpfsSizeBytes: 1 << 20},
		},
	}
	sp, err := containerSpec(app, &svc)
	if err != nil {
		t.Fatal(err)
	}
	c, h := sp.config, sp.host
	if c.WorkingDir != "/srv" || c.Hostname != "h" || !c.Tty || !c.OpenStdin || c.StopSignal != "SIGQUIT" || *c.StopTimeout != 7 {
		t.Errorf("config %+v", c)
	}
	if c.Healthcheck == nil || c.Healthcheck.Interval != time.Second || c.Healthcheck.Retries != 3 {
		t.Errorf("healthcheck %+v", c.Healthcheck)
	}
	if len(c.ExposedPorts) != 2 {
		t.Errorf("exposed %v", c.ExposedPorts)
	}
	if h.Memory != 3<<20 || h.MemoryReservation != 1<<20 || *h.PidsLimit != 50 || !h.Privileged || !h.ReadonlyRootfs ||
		h.ShmSize != 64<<20 || !*h.Init || h.LogConfig.Type != "json-file" ||
		h.RestartPolicy.Name != container.RestartPolicyAlways {
		t.Errorf("host %+v", h)
	}
	if !reflect.DeepEqual(h.Devices, []container.DeviceMapping{{PathOnHost: "/dev/ttyUSB0", PathInContainer: "/dev/ttyUSB0", CgroupPermissions: "rwm"}}) {
		t.Errorf("devices %+v", h.Devices)
	}
	if !reflect.DeepEqual(h.Binds, []string{"/srv/conf:/conf:ro"}) || len(h.Mounts) != 1 || h.Mounts[0].TmpfsOptions.SizeBytes != 1<<20 {
		t.Errorf("binds %v mounts %+v", h.Binds, h.Mounts)
	}
	if h.NetworkMode != "p_back" || len(sp.network.EndpointsConfig) != 1 ||
		!reflect.DeepEqual(sp.network.EndpointsConfig["p_back"].Aliases, []string{"web", "www"}) ||
		sp.network.EndpointsConfig["p_back"].IPAMConfig.IPv4Address != "172.30.0.2" {
		t.Errorf("network mode %q, endpoints %+v", h.NetworkMode, sp.network)
	}

	hostNet := apps.Service{Name: "x", Image: "i", NetworkMode: "host", Ports: []apps.Port{{Target: 80, Protocol: "tcp"}}}
	if _, err := containerSpec(app, &hostNet); err == nil {
		t.Error("network_mode host with ports accepted")
	}
}

func TestStackServiceSpec(t *testing.T) {
	app := &apps.App{ID: "ns", Kind: apps.KindNuvlaSwarm,
		Volumes: []apps.Volume{{Key: "data", Name: "ns_data", DriverOpts: map[string]string{"type": "nfs"}}}}
	svc := apps.Service{
		Name: "web", Image: "nginx", Command: []string{"run"}, Entrypoint: []string{"/e"},
		Ports:  []apps.Port{{Target: 80, Protocol: "tcp"}},
		Mounts: []apps.Mount{{Type: apps.MountVolume, Source: "ns_data", Target: "/d"}},
		CPUs:   0.5, MemoryBytes: 1 << 20, Restart: apps.RestartPolicy{Condition: apps.RestartOnFailure, MaxAttempts: 2},
		Labels:   map[string]string{"mine": "1", apps.LabelComposeWorkDir: "/x"},
		Networks: []apps.ServiceNetwork{{Name: "ns_default", Aliases: []string{"web"}}},
		Swarm:    &apps.SwarmDeploy{Mode: "replicated", Replicas: 3, Labels: map[string]string{"d": "1"}, Constraints: []string{"node.role==manager"}},
	}
	spec, err := stackServiceSpec(app, &svc)
	if err != nil {
		t.Fatal(err)
	}
	cs := spec.TaskTemplate.ContainerSpec
	if spec.Name != "ns_web" || spec.Labels[LabelStackNamespace] != "ns" || spec.Labels["d"] != "1" || spec.Labels[apps.LabelSpecHash] == "" {
		t.Errorf("annotations %+v", spec.Annotations)
	}
	if cs.Labels[LabelStackNamespace] != "ns" || cs.Labels["mine"] != "1" || cs.Labels[apps.LabelApp] != "" || cs.Labels[apps.LabelComposeWorkDir] != "" {
		t.Errorf("container labels %v", cs.Labels)
	}
	if !reflect.DeepEqual(cs.Command, []string{"/e"}) || !reflect.DeepEqual(cs.Args, []string{"run"}) {
		t.Errorf("command %v args %v", cs.Command, cs.Args)
	}
	if *spec.Mode.Replicated.Replicas != 3 || spec.TaskTemplate.Placement.Constraints[0] != "node.role==manager" ||
		spec.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionOnFailure || *spec.TaskTemplate.RestartPolicy.MaxAttempts != 2 {
		t.Errorf("mode/placement/restart %+v", spec)
	}
	if spec.TaskTemplate.Resources.Limits.NanoCPUs != 5e8 || spec.TaskTemplate.Resources.Limits.MemoryBytes != 1<<20 {
		t.Errorf("resources %+v", spec.TaskTemplate.Resources.Limits)
	}
	m := cs.Mounts[0]
	if m.VolumeOptions.Labels[LabelStackNamespace] != "ns" || m.VolumeOptions.DriverConfig.Options["type"] != "nfs" {
		t.Errorf("mount %+v", m)
	}
	if len(spec.EndpointSpec.Ports) != 1 || spec.EndpointSpec.Ports[0].TargetPort != 80 {
		t.Errorf("ports %+v", spec.EndpointSpec)
	}
	if spec.TaskTemplate.Networks[0].Target != "ns_default" {
		t.Errorf("networks %+v", spec.TaskTemplate.Networks)
	}
}
