package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

// Desired states of an app.
const (
	DesiredRunning = "running"
	DesiredStopped = "stopped"
)

// Sources of an app.
const (
	SourceNuvla = "nuvla"
	SourceLocal = "local"
)

// AppRecord is the desired state of one app. Credentials and Params may hold
// secrets (a deployment's api secret, a published token), and App's
// environment often does: String, GoString and LogValue show none of them.
// Its JSON encoding redacts the deployment's api secret (the store persists
// it through its own encoding) but keeps the app and its parameters.
type AppRecord struct {
	App apps.App `json:"app"`
	// Desired is DesiredRunning or DesiredStopped.
	Desired string `json:"desired"`
	// Source is SourceNuvla or SourceLocal.
	Source string `json:"source"`
	// DeploymentID is the Nuvla deployment ("deployment/<uuid>"), if any.
	DeploymentID string `json:"deployment-id,omitempty"`
	// JobID is the job that last changed this record, if any.
	JobID string `json:"job-id,omitempty"`
	// Updated is when the record was last written; PutApp sets it.
	Updated time.Time `json:"updated"`
	// Credentials are the Nuvla deployment's own api key; nil if none.
	Credentials *DeploymentCredentials `json:"credentials,omitempty"`
	// Params are the output parameter values last published, by name.
	Params map[string]string `json:"params,omitempty"`
	// Error is set when the last job on the app failed; resync leaves such
	// an app as it is until the next job.
	Error string `json:"error,omitempty"`
	// Session is set for a locally launched session (App.Kind session).
	Session *SessionMeta `json:"session,omitempty"`
}

// DeploymentCredentials are a Nuvla deployment's api key and secret.
// String, GoString, LogValue and MarshalJSON never show the secret.
type DeploymentCredentials struct {
	APIKey    string `json:"api-key"`
	APISecret string `json:"api-secret"`
}

// String shows the key, never the secret.
func (c DeploymentCredentials) String() string {
	return fmt.Sprintf("DeploymentCredentials{APIKey:%s APISecret:%s}", c.APIKey, secret(c.APISecret))
}

// GoString keeps %#v from printing the secret.
func (c DeploymentCredentials) GoString() string { return "store." + c.String() }

// LogValue logs the key, never the secret.
func (c DeploymentCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("api-key", c.APIKey), slog.String("api-secret", secret(c.APISecret)))
}

// String summarises the record without credentials, environment or
// parameter values.
func (r AppRecord) String() string {
	creds := "<nil>"
	if r.Credentials != nil {
		creds = r.Credentials.String()
	}
	return fmt.Sprintf("AppRecord{ID:%s Kind:%s Name:%s Desired:%s Source:%s DeploymentID:%s JobID:%s Updated:%s Services:%d Params:%d Credentials:%s}",
		r.App.ID, r.App.Kind, r.App.Name, r.Desired, r.Source, r.DeploymentID, r.JobID,
		r.Updated.Format(time.RFC3339), len(r.App.Services), len(r.Params), creds)
}

// GoString keeps %#v from printing secrets.
func (r AppRecord) GoString() string { return "store." + r.String() }

// LogValue logs a summary of the record without secrets.
func (r AppRecord) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", r.App.ID),
		slog.String("kind", string(r.App.Kind)),
		slog.String("name", r.App.Name),
		slog.String("desired", r.Desired),
		slog.String("source", r.Source),
		slog.String("deployment-id", r.DeploymentID),
		slog.String("job-id", r.JobID),
		slog.Time("updated", r.Updated),
		slog.Int("services", len(r.App.Services)),
		slog.Int("params", len(r.Params)),
	}
	if r.Credentials != nil {
		attrs = append(attrs, slog.Any("credentials", *r.Credentials))
	}
	return slog.GroupValue(attrs...)
}

// credentialsDisk is DeploymentCredentials as stored: no methods.
type credentialsDisk DeploymentCredentials

// MarshalJSON encodes the credentials with the secret redacted.
func (c DeploymentCredentials) MarshalJSON() ([]byte, error) {
	d := credentialsDisk(c)
	d.APISecret = secret(d.APISecret)
	return json.Marshal(d)
}

// appRecordDisk is AppRecord as stored, with the credentials' secret.
type appRecordDisk struct {
	App          apps.App          `json:"app"`
	Desired      string            `json:"desired"`
	Source       string            `json:"source"`
	DeploymentID string            `json:"deployment-id,omitempty"`
	JobID        string            `json:"job-id,omitempty"`
	Updated      time.Time         `json:"updated"`
	Credentials  *credentialsDisk  `json:"credentials,omitempty"`
	Params       map[string]string `json:"params,omitempty"`
	Error        string            `json:"error,omitempty"`
	Session      *sessionDisk      `json:"session,omitempty"`
}

func (r AppRecord) disk() appRecordDisk {
	return appRecordDisk{
		App: r.App, Desired: r.Desired, Source: r.Source, DeploymentID: r.DeploymentID,
		JobID: r.JobID, Updated: r.Updated, Credentials: (*credentialsDisk)(r.Credentials), Params: r.Params,
		Error: r.Error, Session: (*sessionDisk)(r.Session),
	}
}

func (d appRecordDisk) record() AppRecord {
	return AppRecord{
		App: d.App, Desired: d.Desired, Source: d.Source, DeploymentID: d.DeploymentID,
		JobID: d.JobID, Updated: d.Updated, Credentials: (*DeploymentCredentials)(d.Credentials), Params: d.Params,
		Error: d.Error, Session: (*SessionMeta)(d.Session),
	}
}

func (r *AppRecord) validate() error {
	if err := checkKey("app", r.App.ID); err != nil {
		return err
	}
	switch r.Desired {
	case DesiredRunning, DesiredStopped:
	default:
		return fmt.Errorf("app %s: desired state %q is neither %q nor %q", r.App.ID, r.Desired, DesiredRunning, DesiredStopped)
	}
	switch r.Source {
	case SourceNuvla, SourceLocal:
	default:
		return fmt.Errorf("app %s: source %q is neither %q nor %q", r.App.ID, r.Source, SourceNuvla, SourceLocal)
	}
	return nil
}

// PutApp creates or replaces the record of app r.App.ID, stamping Updated.
func (s *Store) PutApp(r AppRecord) error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("put app: %w", err)
	}
	r.Updated = s.now()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx, bucketApps, r.App.ID, r.disk())
	}); err != nil {
		return fmt.Errorf("put app %s: %w", r.App.ID, err)
	}
	return nil
}

// App returns the record of one app; false if there is none.
func (s *Store) App(id string) (AppRecord, bool, error) {
	if err := checkKey("app", id); err != nil {
		return AppRecord{}, false, fmt.Errorf("read app: %w", err)
	}
	var (
		r  AppRecord
		ok bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		var d appRecordDisk
		d, ok, err = getJSON[appRecordDisk](tx, bucketApps, id)
		r = d.record()
		return err
	})
	if err != nil {
		return AppRecord{}, false, fmt.Errorf("read app %s: %w", id, err)
	}
	return r, ok, nil
}

// DeleteApp removes the record of one app; deleting a missing app is not an
// error.
func (s *Store) DeleteApp(id string) error {
	if err := checkKey("app", id); err != nil {
		return fmt.Errorf("delete app: %w", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return deleteKey(tx, bucketApps, id)
	}); err != nil {
		return fmt.Errorf("delete app %s: %w", id, err)
	}
	return nil
}

// Apps returns every app record, ordered by id.
func (s *Store) Apps() ([]AppRecord, error) {
	var disk []appRecordDisk
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		disk, err = listJSON[appRecordDisk](tx, bucketApps, s.log)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	out := make([]AppRecord, len(disk))
	for i, d := range disk {
		out[i] = d.record()
	}
	return out, nil
}
