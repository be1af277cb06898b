package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Identity is who the box is on the control plane. APISecret is a secret:
// String, GoString, LogValue and MarshalJSON never show it (the store
// persists it through its own encoding).
type Identity struct {
	// NuvlaboxID is the nuvlabox resource id ("nuvlabox/<uuid>").
	NuvlaboxID string `json:"nuvlabox-id"`
	Endpoint   string `json:"endpoint,omitempty"`
	Insecure   bool   `json:"insecure,omitempty"`
	APIKey     string `json:"api-key,omitempty"`
	APISecret  string `json:"api-secret,omitempty"`
	// StatusID is the nuvlabox-status resource id.
	StatusID string `json:"status-id,omitempty"`
	// State is the nuvlabox state as last seen (NEW, ACTIVATED, COMMISSIONED, ...).
	State     string    `json:"state,omitempty"`
	Activated time.Time `json:"activated,omitzero"`
}

// String describes the identity without its secret.
func (id Identity) String() string {
	return fmt.Sprintf("Identity{NuvlaboxID:%s Endpoint:%s Insecure:%t APIKey:%s APISecret:%s StatusID:%s State:%s Activated:%s}",
		id.NuvlaboxID, id.Endpoint, id.Insecure, id.APIKey, secret(id.APISecret), id.StatusID, id.State, id.Activated.Format(time.RFC3339))
}

// GoString keeps %#v from printing the secret.
func (id Identity) GoString() string { return "store." + id.String() }

// LogValue logs the identity without its secret.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("nuvlabox-id", id.NuvlaboxID),
		slog.String("endpoint", id.Endpoint),
		slog.Bool("insecure", id.Insecure),
		slog.String("api-key", id.APIKey),
		slog.String("api-secret", secret(id.APISecret)),
		slog.String("status-id", id.StatusID),
		slog.String("state", id.State),
		slog.Time("activated", id.Activated),
	)
}

// identityDisk is Identity as stored: the same fields, none of the methods.
type identityDisk Identity

// MarshalJSON encodes the identity with its secret redacted, so an Identity
// inside a logged or served JSON document cannot leak it.
func (id Identity) MarshalJSON() ([]byte, error) {
	d := identityDisk(id)
	d.APISecret = secret(d.APISecret)
	return json.Marshal(d)
}

// Identity returns the stored identity; false if none was saved yet.
func (s *Store) Identity() (Identity, bool, error) {
	var (
		id Identity
		ok bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		var d identityDisk
		d, ok, err = getJSON[identityDisk](tx, bucketIdentity, string(keyIdentity))
		id = Identity(d)
		return err
	})
	if err != nil {
		return Identity{}, false, fmt.Errorf("read identity: %w", err)
	}
	return id, ok, nil
}

// SaveIdentity replaces the stored identity.
func (s *Store) SaveIdentity(id Identity) error {
	if id.NuvlaboxID == "" {
		return fmt.Errorf("save identity: empty nuvlabox id")
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx, bucketIdentity, string(keyIdentity), identityDisk(id))
	}); err != nil {
		return fmt.Errorf("save identity %s: %w", id.NuvlaboxID, err)
	}
	return nil
}
