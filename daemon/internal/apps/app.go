// Package apps holds berth's one workload model, the App, and the pure
// functions around it: converters from each kind of input (a Nuvla component,
// later compose files and sessions) into an App, and the planner that compares
// a desired App with the containers Docker really has and says what to do.
//
// Nothing in this package performs I/O. The engine package carries out the
// actions the planner returns.
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
)

// Container labels. The compose labels make berth's containers visible to
// `docker compose -p <app id> ps` and to Nuvla's server-side parameter
// derivation; the berth labels make them recoverable after a restart.
const (
	LabelComposeProject   = "com.docker.compose.project"
	LabelComposeService   = "com.docker.compose.service"
	LabelComposeNumber    = "com.docker.compose.container-number"
	LabelComposeOneoff    = "com.docker.compose.oneoff"
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
}

// Restart conditions, as Nuvla names them.
const (
	RestartNone      = "none"
	RestartOnFailure = "on-failure"
	RestartAny       = "any"
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
