package client

import "time"

// Status is berthd's own state and its link to the control plane, as
// GET /api/v1/status returns it.
type Status struct {
	// Version of berthd.
	Version string `json:"version"`
	// Mode is "standalone" or "nuvla".
	Mode string `json:"mode"`
	// State is the agent's state: standalone, activating, commissioning,
	// online, offline, decommissioned, error.
	State string `json:"state"`
	// Message explains State in a sentence (what is wrong, what to do).
	Message string `json:"message,omitempty"`
	// Since is when State was entered.
	Since time.Time `json:"since"`
	// Started is when berthd started.
	Started time.Time `json:"started"`
	Docker  Docker    `json:"docker"`
	Nuvla   *Nuvla    `json:"nuvla,omitempty"`
	// Jobs are the most recent jobs, newest first.
	Jobs []Job `json:"jobs"`
	// Apps counts apps by state.
	Apps map[string]int `json:"apps"`
}

// Docker is the engine connection.
type Docker struct {
	Connected  bool   `json:"connected"`
	Version    string `json:"version,omitempty"`
	APIVersion string `json:"api-version,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Nuvla is the control-plane link.
type Nuvla struct {
	Endpoint      string    `json:"endpoint"`
	NuvlaboxID    string    `json:"nuvlabox-id"`
	BoxState      string    `json:"box-state,omitempty"` // NEW, ACTIVATED, COMMISSIONED...
	Online        bool      `json:"online"`
	LastHeartbeat time.Time `json:"last-heartbeat,omitempty"`
	LastTelemetry time.Time `json:"last-telemetry,omitempty"`
	// OfflineSince is set while the control plane cannot be reached.
	OfflineSince      time.Time `json:"offline-since,omitempty"`
	LastError         string    `json:"last-error,omitempty"`
	HeartbeatInterval int       `json:"heartbeat-interval,omitempty"` // seconds
	RefreshInterval   int       `json:"refresh-interval,omitempty"`   // seconds
}

// Job is a control-plane job as berthd journaled it.
type Job struct {
	ID         string    `json:"id"`
	Action     string    `json:"action"`
	Target     string    `json:"target"`
	State      string    `json:"state"` // accepted, running, succeeded, failed
	Message    string    `json:"message,omitempty"`
	ReturnCode int       `json:"return-code"`
	Received   time.Time `json:"received"`
	Updated    time.Time `json:"updated"`
}

// App is one running (or wanted) workload, as GET /api/v1/apps returns it.
type App struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Kind is nuvla-component, nuvla-application, session...
	Kind  string `json:"kind"`
	Owner string `json:"owner,omitempty"`
	// Source is nuvla or local; "unmanaged" marks containers labelled by
	// berth that no desired state claims (they are left alone).
	Source string `json:"source"`
	// Desired is running, stopped or error.
	Desired string `json:"desired"`
	// State summarises the containers: running, partial, stopped, missing.
	State        string    `json:"state"`
	DeploymentID string    `json:"deployment-id,omitempty"`
	Created      time.Time `json:"created,omitempty"`
	Services     []Service `json:"services"`
	// URLs are resolved connect URLs, name -> URL.
	URLs map[string]string `json:"urls,omitempty"`
	// Params are output parameters berthd published, name -> value.
	Params map[string]string `json:"params,omitempty"`
}

// Service is one container of an App.
type Service struct {
	Name        string    `json:"name"`
	Image       string    `json:"image"`
	ContainerID string    `json:"container-id,omitempty"`
	State       string    `json:"state"` // Docker's: running, exited... or "missing"
	Status      string    `json:"status,omitempty"`
	Ports       []Port    `json:"ports,omitempty"`
	Created     time.Time `json:"created,omitempty"`
}

// Port is a published port.
type Port struct {
	Target   int    `json:"target"`
	Protocol string `json:"protocol"`
	HostIP   string `json:"host-ip,omitempty"`
	HostPort int    `json:"host-port"`
}

// Error is the body of every error answer.
type Error struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// Activation is the body of POST /api/v1/nuvla: the control plane and the
// box to activate.
type Activation struct {
	Endpoint   string `json:"endpoint"`
	NuvlaboxID string `json:"nuvlabox-id"`
	Insecure   bool   `json:"insecure,omitempty"`
}
