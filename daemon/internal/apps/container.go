package apps

import "time"

// Container is what Docker really has for one service of an App, as the
// engine observed it.
type Container struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	AppID    string    `json:"app"`
	Service  string    `json:"service"`
	Kind     Kind      `json:"kind,omitempty"`
	Owner    string    `json:"owner,omitempty"`
	SpecHash string    `json:"spec-hash,omitempty"`
	Image    string    `json:"image"`
	State    string    `json:"state"` // created, running, paused, restarting, removing, exited, dead
	Status   string    `json:"status,omitempty"`
	Created  time.Time `json:"created"`
	// Ports are the published bindings Docker chose (HostPort is real, even
	// for ports that asked for an ephemeral one).
	Ports  []PortBinding     `json:"ports,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// PortBinding is one container port bound on the host.
type PortBinding struct {
	Target   int    `json:"target"`
	Protocol string `json:"protocol"`
	HostIP   string `json:"host-ip,omitempty"`
	HostPort int    `json:"host-port"`
}

// Container states that matter to the planner.
const (
	StateCreated = "created"
	StateRunning = "running"
	StateExited  = "exited"
)

// ActionType is what the engine is asked to do.
type ActionType string

// Action types, applied in the order the planner returns them.
const (
	ActionRemove ActionType = "remove"
	ActionCreate ActionType = "create"
	ActionStart  ActionType = "start"
)

// Action is one step that brings Docker closer to the desired App.
type Action struct {
	Type    ActionType `json:"type"`
	Service string     `json:"service"`
	// ContainerID is set for remove and for start of an existing container.
	ContainerID string `json:"container,omitempty"`
	Reason      string `json:"reason"`
}
