package client

import (
	"context"
	"time"
)

// Telemetry is what GET /api/v1/telemetry returns: the latest sample, a
// short history (oldest first), and the last nuvlabox-status document the
// control plane acknowledged (absent when standalone or never sent).
type Telemetry struct {
	Latest  *Sample  `json:"latest,omitempty"`
	History []Sample `json:"history"`
	// Acknowledged is the last nuvlabox-status document (agent-owned keys
	// only) the control plane accepted; the next patch is computed
	// against it.
	Acknowledged map[string]any `json:"acknowledged,omitempty"`
	// Sent counts telemetry updates since berthd started, by form.
	Patches int `json:"patches"`
	Puts    int `json:"puts"`
}

// Sample is one telemetry tick.
type Sample struct {
	Time time.Time `json:"time"`
	CPU  CPU       `json:"cpu"`
	// RAM in MiB.
	RAM          RAM                 `json:"ram"`
	Disks        []Disk              `json:"disks,omitempty"`
	Net          []NetStat           `json:"net,omitempty"`
	Temperatures []Temperature       `json:"temperatures,omitempty"`
	Containers   []ContainerUsage    `json:"containers"`
	Apps         map[string]AppUsage `json:"apps,omitempty"`
}

// CPU is the host's processor load.
type CPU struct {
	Cores   int     `json:"cores"`
	Load1   float64 `json:"load-1"`
	Load5   float64 `json:"load-5"`
	Load15  float64 `json:"load-15"`
	Percent float64 `json:"percent"` // busy share of all cores, 0-100
}

// RAM is memory in MiB.
type RAM struct {
	Total int64 `json:"total"`
	Used  int64 `json:"used"`
}

// Disk is one filesystem, in bytes.
type Disk struct {
	Device   string `json:"device"`
	Capacity int64  `json:"capacity"`
	Used     int64  `json:"used"`
}

// NetStat is one interface's counters, in bytes.
type NetStat struct {
	Interface string `json:"interface"`
	RxBytes   int64  `json:"rx-bytes"`
	TxBytes   int64  `json:"tx-bytes"`
}

// Temperature is one sensor, in degrees Celsius.
type Temperature struct {
	Zone  string  `json:"zone"`
	Value float64 `json:"value"`
}

// ContainerUsage is one berth-managed container's resource use.
type ContainerUsage struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	App     string `json:"app,omitempty"`
	Service string `json:"service,omitempty"`
	State   string `json:"state"`
	// CPUPercent is relative to one core (200 = two cores busy).
	CPUPercent float64 `json:"cpu-percent"`
	MemBytes   int64   `json:"mem-bytes"`
	MemLimit   int64   `json:"mem-limit,omitempty"`
	NetRx      int64   `json:"net-rx"`
	NetTx      int64   `json:"net-tx"`
	DiskRead   int64   `json:"disk-read"`
	DiskWrite  int64   `json:"disk-write"`
}

// AppUsage sums an app's containers.
type AppUsage struct {
	State      string  `json:"state"`
	Containers int     `json:"containers"`
	Running    int     `json:"running"`
	CPUPercent float64 `json:"cpu-percent"`
	MemBytes   int64   `json:"mem-bytes"`
}

// Event is one Server-Sent Event of GET /api/v1/events.
type Event struct {
	// Type is "app", "job" or "telemetry".
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Data is the event's payload: an AppEvent, a Job, or a Sample.
	Data any `json:"data"`
}

// AppEvent says an app's containers changed.
type AppEvent struct {
	ID string `json:"id"`
	// Action is "changed". Name, Kind and Desired are empty when no
	// desired state claims the app (it was removed, or is unmanaged).
	Action string `json:"action,omitempty"`
	State  string `json:"state,omitempty"`
	Name   string `json:"name,omitempty"`
	Kind   string `json:"kind,omitempty"`
	// Desired is running, stopped or error.
	Desired string `json:"desired,omitempty"`
}

// Telemetry returns the latest telemetry sample and its short history;
// with fresh, berthd samples now unless its latest sample is under a second
// old.
func (c *Client) Telemetry(ctx context.Context, fresh bool) (Telemetry, error) {
	var t Telemetry
	path := "/api/v1/telemetry"
	if fresh {
		path += "?fresh=1"
	}
	err := c.Get(ctx, path, &t)
	return t, err
}
