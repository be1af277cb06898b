package client

// Session types, as skaha names them.
const (
	TypeNotebook    = "notebook"
	TypeContributed = "contributed"
	TypeCarta       = "carta"
	TypeDesktopApp  = "desktop-app"
	TypeHeadless    = "headless"
)

// SessionTypes lists every session type berthd runs, in menu order.
var SessionTypes = []string{TypeNotebook, TypeContributed, TypeCarta, TypeDesktopApp, TypeHeadless}

// Session statuses, as skaha names them.
const (
	StatusPending     = "Pending"
	StatusRunning     = "Running"
	StatusCompleted   = "Completed"
	StatusFailed      = "Failed"
	StatusTerminating = "Terminating"
)

// Session is one session, with skaha v1's field names (GET session,
// GET session/{id}). Fields skaha leaves out when they are null are
// omitted when empty. Times are RFC 3339 in UTC ("2023-02-22T00:48:30Z").
type Session struct {
	ID                 string `json:"id"`
	UserID             string `json:"userid"`
	RunAsUID           string `json:"runAsUID"`
	RunAsGID           string `json:"runAsGID"`
	SupplementalGroups []int  `json:"supplementalGroups,omitempty"`
	Image              string `json:"image"`
	Type               string `json:"type"`
	Status             string `json:"status"`
	Name               string `json:"name"`
	StartTime          string `json:"startTime"`
	ExpiryTime         string `json:"expiryTime,omitempty"`
	// ConnectURL opens a web session through berthd's proxy, token
	// included; "" for headless and desktop-app sessions.
	ConnectURL        string `json:"connectURL"`
	RequestedRAM      string `json:"requestedRAM,omitempty"`      // "8G"
	RequestedCPUCores string `json:"requestedCPUCores,omitempty"` // "2"
	RequestedGPUCores string `json:"requestedGPUCores,omitempty"` // "0"
	RAMInUse          string `json:"ramInUse,omitempty"`          // "95M"
	CPUCoresInUse     string `json:"cpuCoresInUse,omitempty"`     // "0.001"
	IsFixedResources  bool   `json:"isFixedResources"`

	// berth's additions.

	// Profile is the admin profile the session was launched from, if any.
	Profile string `json:"profile,omitempty"`
	// LastActivity is the last request through the proxy (web sessions).
	LastActivity string `json:"lastActivity,omitempty"`
	// Message explains a Pending or Failed status (pulling, the error).
	Message string `json:"message,omitempty"`
	// ExitCode of a Completed or Failed headless session.
	ExitCode *int `json:"exitCode,omitempty"`
}

// Image is one launchable image (GET image), skaha's {id, types, digest}
// plus where berthd found it.
type Image struct {
	ID     string   `json:"id"`
	Types  []string `json:"types"`
	Digest string   `json:"digest,omitempty"`
	// Source is "local", "registry:<name>", "harbor:<name>" or "profile".
	Source string `json:"source,omitempty"`
	// Profile names the profile this entry launches, for Source "profile".
	Profile string `json:"profile,omitempty"`
}

// Context is the resources a session may ask for (GET context).
type Context struct {
	Cores                  ResourceOptions `json:"cores"`
	MemoryGB               ResourceOptions `json:"memoryGB"`
	GPUs                   GPUOptions      `json:"gpus"`
	MaxInteractiveSessions int             `json:"maxInteractiveSessions"`
}

// ResourceOptions are the choices for one resource.
type ResourceOptions struct {
	Default        int   `json:"default"`
	DefaultRequest int   `json:"defaultRequest"`
	DefaultLimit   int   `json:"defaultLimit"`
	Options        []int `json:"options"`
}

// GPUOptions are the GPU choices (none on most boxes).
type GPUOptions struct {
	Options []int `json:"options"`
}

// MenuProject is one project submenu of the Astro Software menu
// (GET menu): the path component after the registry host.
type MenuProject struct {
	Name  string     `json:"name"`
	Items []MenuItem `json:"items"`
}

// MenuItem is one entry of a project submenu.
type MenuItem struct {
	// Label is "name:tag".
	Label string `json:"label"`
	// Image is the full image reference to launch.
	Image string   `json:"image"`
	Types []string `json:"types"`
	// Profile is set for entries that launch an admin profile.
	Profile string `json:"profile,omitempty"`
}

// Profile is an admin-defined container profile (GET profiles).
type Profile struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Image       string            `json:"image"`
	Type        string            `json:"type"`
	Command     []string          `json:"command,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Cores       int               `json:"cores,omitempty"`
	RAMGB       int               `json:"ramGB,omitempty"`
	Storages    []ProfileStorage  `json:"storages,omitempty"`
	// RetryLimit is the restart policy's maximum attempts (0: no restart).
	RetryLimit int `json:"retryLimit,omitempty"`
	// PullCredential names a stored registry credential.
	PullCredential string `json:"pullCredential,omitempty"`
}

// ProfileStorage is a named storage a profile mounts.
type ProfileStorage struct {
	// Name is a Docker volume name, or an absolute host path.
	Name     string `json:"name"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// Optional storages that do not exist are skipped; a missing required
	// one fails the launch with a message naming it.
	Optional bool `json:"optional,omitempty"`
}

// Registry is a stored registry credential as the API shows it: never the
// password (GET registries).
type Registry struct {
	Name     string `json:"name"`
	Server   string `json:"server"`
	Username string `json:"username,omitempty"`
}

// PullProgress is the data of a "pull" event: an image pull for a session.
type PullProgress struct {
	Session string `json:"session"`
	Image   string `json:"image"`
	// Current and Total are bytes over all layers (Total 0: unknown yet).
	Current int64 `json:"current"`
	Total   int64 `json:"total"`
	// Layers and LayersDone count the image's layers.
	Layers     int    `json:"layers"`
	LayersDone int    `json:"layersDone"`
	Done       bool   `json:"done,omitempty"`
	Error      string `json:"error,omitempty"`
}

// SessionEvent is the data of a "session" event: a session changed status.
type SessionEvent struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}
