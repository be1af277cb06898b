package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Phases of a session's life as the sessions manager records them; the
// status a client sees is derived from the phase and the container.
const (
	// PhasePending: the image is being pulled, the container created or started.
	PhasePending = "pending"
	// PhaseStarting: the container runs; a web session does not answer yet.
	PhaseStarting = "starting"
	// PhaseStarted: the container was started; its state says the rest.
	PhaseStarted = "started"
	// PhaseFailed: the launch failed (Message says why).
	PhaseFailed = "failed"
	// PhaseTerminating: the session is being deleted.
	PhaseTerminating = "terminating"
)

// SessionMeta is what berthd knows about a locally launched session beyond
// its App: who launched it, its secret token, its lifetime. Its String,
// GoString, LogValue and MarshalJSON never show the token; the store keeps
// it through its own encoding.
type SessionMeta struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Image    string `json:"image"`
	UserName string `json:"user-name"`
	UID      int    `json:"uid"`
	GID      int    `json:"gid"`
	Groups   []int  `json:"groups,omitempty"`
	// Token is the session's secret: the proxy checks it, a notebook gets
	// it as its Jupyter token.
	Token string `json:"token"`
	// Cores and RAMGB are what the session asked for (0: flexible).
	Cores int  `json:"cores,omitempty"`
	RAMGB int  `json:"ram-gb,omitempty"`
	Fixed bool `json:"fixed,omitempty"`
	// Profile is the admin profile the session was launched from.
	Profile string `json:"profile,omitempty"`
	// Display is the X display of a desktop-app session.
	Display      string    `json:"display,omitempty"`
	Started      time.Time `json:"started"`
	Expiry       time.Time `json:"expiry"`
	LastActivity time.Time `json:"last-activity,omitempty"`
	Phase        string    `json:"phase"`
	Message      string    `json:"message,omitempty"`
	// Addr is the web session's published address (127.0.0.1:port).
	Addr string `json:"addr,omitempty"`
	// Events are what happened to the session, oldest first.
	Events []SessionEvent `json:"events,omitempty"`
}

// SessionEvent is one line of a session's events (GET session/{id}?view=events).
type SessionEvent struct {
	Type    string    `json:"type"` // Normal or Warning
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
}

// String describes the session without its token.
func (m SessionMeta) String() string {
	return fmt.Sprintf("SessionMeta{Type:%s Name:%s Image:%s UID:%d Phase:%s Token:%s}",
		m.Type, m.Name, m.Image, m.UID, m.Phase, secret(m.Token))
}

// GoString keeps %#v from printing the token.
func (m SessionMeta) GoString() string { return "store." + m.String() }

// LogValue logs the session without its token.
func (m SessionMeta) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", m.Type), slog.String("name", m.Name),
		slog.String("image", m.Image), slog.Int("uid", m.UID), slog.String("phase", m.Phase))
}

// sessionDisk is SessionMeta as stored, token included: no methods.
type sessionDisk SessionMeta

// MarshalJSON encodes the session with its token redacted.
func (m SessionMeta) MarshalJSON() ([]byte, error) {
	d := sessionDisk(m)
	d.Token = secret(d.Token)
	return json.Marshal(d)
}
