// Package apps holds berth's one workload model, the App, and the pure
// functions around it: converters from each kind of input (a Nuvla component,
// a compose file, later sessions) into an App, and the planner that compares
// a desired App with the containers Docker really has and says what to do.
//
// Nothing in this package performs I/O, except that FromCompose reads the
// compose file (and its env files) from the app's directory. The engine
// package carries out the actions the planner returns.
package apps

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Kind says where an App came from.
type Kind string

// Kinds of App.
const (
	KindNuvlaComponent Kind = "nuvla-component"
	KindSession        Kind = "session"
	// KindNuvlaApplication is a Nuvla module of subtype application: a
	// compose file.
	KindNuvlaApplication Kind = "nuvla-application"
	// KindNuvlaSwarm is a compose application of swarm compatibility,
	// run as a stack of Swarm services.
	KindNuvlaSwarm Kind = "nuvla-swarm"
)

// Container labels. The compose labels make berth's containers visible to
// `docker compose -p <app id> ps` and to Nuvla's server-side parameter
// derivation; the berth labels make them recoverable after a restart.
const (
	LabelComposeProject   = "com.docker.compose.project"
	LabelComposeService   = "com.docker.compose.service"
	LabelComposeNumber    = "com.docker.compose.container-number"
	LabelComposeOneoff    = "com.docker.compose.oneoff"
	LabelComposeNetwork   = "com.docker.compose.network"
	LabelComposeVolume    = "com.docker.compose.volume"
	LabelComposeVersion   = "com.docker.compose.version"
	LabelComposeWorkDir   = "com.docker.compose.project.working_dir"
	LabelComposeFiles     = "com.docker.compose.project.config_files"
	LabelComposeDependsOn = "com.docker.compose.depends_on"
	LabelComposeImage     = "com.docker.compose.image"
	LabelApp              = "berth.app"
	LabelKind             = "berth.kind"
	LabelOwner            = "berth.owner"
	LabelSpecHash         = "berth.spec-hash"
	LabelManaged          = "berth.managed"
	ManagedValue          = "true"
	defaultContainerIndex = 1
)

// App is one workload: a set of services that berthd keeps running together.
type App struct {
	// ID is unique among apps; for Nuvla deployments it is the deployment uuid.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Name is a human-readable name (the Nuvla module name, or the session name).
	Name string `json:"name,omitempty"`
	// Owner is the uid of the local user who owns the app; empty for Nuvla apps.
	Owner    string    `json:"owner,omitempty"`
	Services []Service `json:"services"`
	// Outputs are the names of output parameters the app may publish.
	Outputs []string `json:"outputs,omitempty"`
	// URLs are the module's URL templates, [name, template] pairs.
	URLs [][2]string `json:"urls,omitempty"`
	// Networks are the networks the app declares (compose apps: the
	// project's default network and every declared one).
	Networks []Network `json:"networks,omitempty"`
	// Volumes are the named volumes the app declares.
	Volumes []Volume `json:"volumes,omitempty"`
}

// Network is a Docker network an App uses.
type Network struct {
	// Key is the name the app's services use for it (compose: the key
	// under networks:, e.g. "default").
	Key string `json:"key"`
	// Name is the Docker network's name (compose: <project>_<key>).
	Name       string            `json:"name"`
	Driver     string            `json:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver-opts,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	EnableIPv6 bool              `json:"enable-ipv6,omitempty"`
	Subnets    []string          `json:"subnets,omitempty"`
	// External networks exist already: berth neither creates nor removes them.
	External bool              `json:"external,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Volume is a named Docker volume an App declares.
type Volume struct {
	Key        string            `json:"key"`
	Name       string            `json:"name"`
	Driver     string            `json:"driver,omitempty"`
	DriverOpts map[string]string `json:"driver-opts,omitempty"`
	External   bool              `json:"external,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// Network returns the declared network of that Docker name, or nil.
func (a *App) Network(name string) *Network {
	for i := range a.Networks {
		if a.Networks[i].Name == name {
			return &a.Networks[i]
		}
	}
	return nil
}

// Volume returns the declared volume of that Docker name, or nil.
func (a *App) Volume(name string) *Volume {
	for i := range a.Volumes {
		if a.Volumes[i].Name == name {
			return &a.Volumes[i]
		}
	}
	return nil
}

// Service is one container of an App.
type Service struct {
	Name       string            `json:"name"`
	Image      string            `json:"image"`
	Command    []string          `json:"command,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Ports      []Port            `json:"ports,omitempty"`
	Mounts     []Mount           `json:"mounts,omitempty"`
	// CPUs is a limit in cores (0 = none).
	CPUs float64 `json:"cpus,omitempty"`
	// MemoryMiB is a limit in MiB (0 = none).
	MemoryMiB int64             `json:"memory-mib,omitempty"`
	Restart   RestartPolicy     `json:"restart"`
	Labels    map[string]string `json:"labels,omitempty"`
	User      string            `json:"user,omitempty"`
	// Registry names the registry server whose credentials pull the image
	// (empty: anonymous or the image's own registry credentials, if known).
	Registry string `json:"registry,omitempty"`

	// The fields below come from compose files; all are omitted when
	// empty, so the spec hash of a service that does not use them is the
	// one it always had.

	// MemoryBytes is a memory limit in bytes; when set it wins over MemoryMiB.
	MemoryBytes int64 `json:"memory-bytes,omitempty"`
	// MemoryReservationBytes is a soft memory limit in bytes.
	MemoryReservationBytes int64 `json:"memory-reservation-bytes,omitempty"`
	// PidsLimit limits the number of processes (0 = none).
	PidsLimit  int64  `json:"pids-limit,omitempty"`
	WorkingDir string `json:"working-dir,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
	// Networks the container joins, with its aliases on each. The first
	// one is the network the container is created on.
	Networks []ServiceNetwork `json:"networks,omitempty"`
	// NetworkMode is "host", "none", "container:<id>"... (empty: the
	// networks above, or Docker's default bridge when there are none).
	NetworkMode string       `json:"network-mode,omitempty"`
	DependsOn   []Dependency `json:"depends-on,omitempty"`
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
	Devices     []Device     `json:"devices,omitempty"`
	CapAdd      []string     `json:"cap-add,omitempty"`
	CapDrop     []string     `json:"cap-drop,omitempty"`
	Privileged  bool         `json:"privileged,omitempty"`
	// ExtraHosts are "host:ip" entries for /etc/hosts.
	ExtraHosts []string          `json:"extra-hosts,omitempty"`
	DNS        []string          `json:"dns,omitempty"`
	Logging    *Logging          `json:"logging,omitempty"`
	Sysctls    map[string]string `json:"sysctls,omitempty"`
	Init       bool              `json:"init,omitempty"`
	Tty        bool              `json:"tty,omitempty"`
	StdinOpen  bool              `json:"stdin-open,omitempty"`
	ReadOnly   bool              `json:"read-only,omitempty"`
	StopSignal string            `json:"stop-signal,omitempty"`
	// StopGracePeriod is in seconds (0 = Docker's default).
	StopGracePeriod int      `json:"stop-grace-period,omitempty"`
	ShmSizeBytes    int64    `json:"shm-size-bytes,omitempty"`
	SecurityOpt     []string `json:"security-opt,omitempty"`
	GroupAdd        []string `json:"group-add,omitempty"`
	// Expose are container ports exposed without publishing ("8080/tcp").
	Expose []string `json:"expose,omitempty"`
	// Swarm is how a swarm stack runs the service (KindNuvlaSwarm only).
	Swarm *SwarmDeploy `json:"swarm,omitempty"`
}

// SwarmDeploy is the deploy: section of a service run as a Swarm service.
type SwarmDeploy struct {
	// Mode is "replicated" or "global".
	Mode string `json:"mode"`
	// Replicas of a replicated service (default 1).
	Replicas    uint64            `json:"replicas,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Constraints []string          `json:"constraints,omitempty"`
}

// ServiceNetwork is one network a service joins.
type ServiceNetwork struct {
	// Name is the Docker network's name.
	Name        string   `json:"name"`
	Aliases     []string `json:"aliases,omitempty"`
	IPv4Address string   `json:"ipv4-address,omitempty"`
}

// Dependency conditions, as compose names them.
const (
	ConditionStarted   = "service_started"
	ConditionHealthy   = "service_healthy"
	ConditionCompleted = "service_completed_successfully"
)

// Dependency is a service that must be started (or healthy, or completed)
// before this one starts.
type Dependency struct {
	Service   string `json:"service"`
	Condition string `json:"condition"`
}

// Healthcheck is Docker's health check. Durations are in nanoseconds, as
// Docker takes them.
type Healthcheck struct {
	// Test is ["CMD", args...], ["CMD-SHELL", cmd] or ["NONE"].
	Test        []string `json:"test,omitempty"`
	Interval    int64    `json:"interval,omitempty"`
	Timeout     int64    `json:"timeout,omitempty"`
	StartPeriod int64    `json:"start-period,omitempty"`
	Retries     int      `json:"retries,omitempty"`
}

// Device is a host device made visible in the container.
type Device struct {
	Host        string `json:"host"`
	Container   string `json:"container"`
	Permissions string `json:"permissions,omitempty"`
}

// Logging is the container's log driver.
type Logging struct {
	Driver  string            `json:"driver,omitempty"`
	Options map[string]string `json:"options,omitempty"`
}

// Port is a container port and how it is published on the host.
type Port struct {
	Target int `json:"target"`
	// Published is the host port; 0 asks Docker for an ephemeral port.
	Published int `json:"published,omitempty"`
	// Protocol is tcp, udp or sctp.
	Protocol string `json:"protocol"`
	// HostIP restricts the binding to one host address (empty: all).
	HostIP string `json:"host-ip,omitempty"`
}

// Key returns "tcp.8080", the form Nuvla uses in parameter names.
func (p Port) Key() string { return p.Protocol + "." + strconv.Itoa(p.Target) }

// Mount types.
const (
	MountBind   = "bind"
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
)

// Mount is a filesystem made visible inside a container.
type Mount struct {
	Type     string `json:"type"`
	Source   string `json:"source,omitempty"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read-only,omitempty"`
	// VolumeOptions are the local driver's options (type=nfs, o=addr=..., device=:/path).
	VolumeOptions map[string]string `json:"volume-options,omitempty"`
	// CreateHostPath creates a missing bind source directory, as the short
	// compose syntax (and docker run -v) does.
	CreateHostPath bool `json:"create-host-path,omitempty"`
	// TmpfsSizeBytes and TmpfsMode shape a tmpfs mount.
	TmpfsSizeBytes int64  `json:"tmpfs-size-bytes,omitempty"`
	TmpfsMode      uint32 `json:"tmpfs-mode,omitempty"`
}

// Restart conditions, as Nuvla names them.
const (
	RestartNone      = "none"
	RestartOnFailure = "on-failure"
	RestartAny       = "any"
	// RestartAlways restarts even a container stopped by hand once Docker
	// restarts (compose's restart: always).
	RestartAlways = "always"
)

// RestartPolicy says when Docker restarts a container.
type RestartPolicy struct {
	Condition   string `json:"condition"`
	MaxAttempts int    `json:"max-attempts,omitempty"`
}

// ContainerName is the deterministic name of a service's container, in the
// form docker compose uses: <project>-<service>-<n>. Deterministic names make
// creation idempotent: a second create for the same service is a conflict,
// never a duplicate.
func ContainerName(appID, service string) string {
	return fmt.Sprintf("%s-%s-%d", appID, service, defaultContainerIndex)
}

// Labels returns the labels every container of service s carries.
func (a *App) Labels(s *Service) map[string]string {
	l := make(map[string]string, len(s.Labels)+8)
	for k, v := range s.Labels {
		l[k] = v
	}
	l[LabelComposeProject] = a.ID
	l[LabelComposeService] = s.Name
	l[LabelComposeNumber] = strconv.Itoa(defaultContainerIndex)
	l[LabelComposeOneoff] = "False"
	l[LabelApp] = a.ID
	l[LabelKind] = string(a.Kind)
	l[LabelManaged] = ManagedValue
	if a.Owner != "" {
		l[LabelOwner] = a.Owner
	}
	l[LabelSpecHash] = s.SpecHash()
	return l
}

// Service returns the named service, or nil.
func (a *App) Service(name string) *Service {
	for i := range a.Services {
		if a.Services[i].Name == name {
			return &a.Services[i]
		}
	}
	return nil
}

// SpecHash is a stable digest of everything that shapes the container. A
// running container whose label differs from its service's hash is stale and
// gets recreated.
func (s *Service) SpecHash() string {
	c := *s
	// Normalise: order of ports and mounts matters to Docker only as a set.
	c.Ports = append([]Port(nil), s.Ports...)
	sort.Slice(c.Ports, func(i, j int) bool { return c.Ports[i].Key() < c.Ports[j].Key() })
	// A Service holds only strings, numbers, slices and string maps, so
	// Marshal cannot fail; maps marshal with sorted keys, so it is stable.
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// EnvList renders the environment as sorted KEY=VALUE pairs.
func (s *Service) EnvList() []string {
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+s.Env[k])
	}
	return out
}
