package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket and key names; see the package comment for the schema.
var (
	bucketMeta       = []byte("meta")
	bucketIdentity   = []byte("identity")
	bucketApps       = []byte("apps")
	bucketJobs       = []byte("jobs")
	bucketRegistries = []byte("registries")

	keySchemaVersion = []byte("schema-version")
	keyCreated       = []byte("created")
	keyIdentity      = []byte("box")
)

// migration brings the schema from version-1 to version. apply runs inside
// the read-write transaction that also records the new version; it can assume
// the data is at version-1.
type migration struct {
	version int
	name    string
	apply   func(tx *bolt.Tx) error
}

// migrations MUST be ordered by version, starting at 1 with no gaps. The
// last entry's version is the schema version this binary writes. Every
// migration needs a test, and the package comment must describe the schema
// after the last one.
var migrations = []migration{
	{version: 1, name: "create buckets meta, identity, apps, jobs, registries", apply: createBuckets},
}

// SchemaVersion is the schema version this binary reads and writes.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketIdentity, bucketApps, bucketJobs, bucketRegistries} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

func validateMigrations(migs []migration) error {
	if len(migs) == 0 {
		return errors.New("no schema migrations")
	}
	for i, m := range migs {
		if m.version != i+1 || m.apply == nil {
			return fmt.Errorf("schema migration %d (%q) is out of order or empty", i, m.name)
		}
	}
	return nil
}

// readVersion returns the schema version recorded in the file; 0 means a
// file that was never initialised.
func readVersion(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	raw := meta.Get(keySchemaVersion)
	if raw == nil {
		return 0, nil
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil || v < 1 {
		return 0, &damageError{reason: fmt.Sprintf("unreadable schema version %q", truncate(raw, 32))}
	}
	return v, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// migrate runs the pending migrations in one transaction. It reports whether
// the file was initialised from scratch (version 0).
func (s *Store) migrate(migs []migration) (fresh bool, err error) {
	latest := migs[len(migs)-1].version
	var current int
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		current, err = readVersion(tx)
		return err
	}); err != nil {
		return false, fmt.Errorf("state file %s: %w", s.path, err)
	}
	switch {
	case current > latest:
		return false, fmt.Errorf("state file %s has schema version %d, this berthd knows up to %d; leaving it untouched (was berthd downgraded?): %w",
			s.path, current, latest, ErrNewerSchema)
	case current == latest:
		return false, nil
	}

	err = s.db.Update(func(tx *bolt.Tx) error {
		from, err := readVersion(tx)
		if err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketMeta, err)
		}
		if meta.Get(keyCreated) == nil {
			created, err := json.Marshal(s.now().Format(time.RFC3339Nano))
			if err != nil {
				return fmt.Errorf("encode created time: %w", err)
			}
			if err := meta.Put(keyCreated, created); err != nil {
				return fmt.Errorf("record created time: %w", err)
			}
		}
		for _, m := range migs {
			if m.version <= from {
				continue
			}
			if err := m.apply(tx); err != nil {
				return fmt.Errorf("schema migration %d (%s): %w", m.version, m.name, err)
			}
			// The meta bucket may be the migration's own doing; look it up again.
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				return fmt.Errorf("schema migration %d (%s) removed bucket %s", m.version, m.name, bucketMeta)
			}
			if err := meta.Put(keySchemaVersion, []byte(fmt.Sprint(m.version))); err != nil {
				return fmt.Errorf("record schema version %d: %w", m.version, err)
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("migrate state file %s from schema version %d to %d: %w", s.path, current, latest, err)
	}
	if current == 0 {
		s.log.Info("state file initialised", "path", s.path, "schema_version", latest)
	} else {
		s.log.Info("state schema migrated", "path", s.path, "from", current, "to", latest)
	}
	return current == 0, nil
}
