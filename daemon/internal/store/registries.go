package store

import (
	"encoding/json"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"
)

// RegistryCredential is how to log in to one container registry. Password
// is a secret: String, GoString, LogValue and MarshalJSON never show it (the
// store persists it through its own encoding).
type RegistryCredential struct {
	Name     string `json:"name"`
	Server   string `json:"server"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// String describes the credential without its password.
func (c RegistryCredential) String() string {
	return fmt.Sprintf("RegistryCredential{Name:%s Server:%s Username:%s Password:%s}", c.Name, c.Server, c.Username, secret(c.Password))
}

// GoString keeps %#v from printing the password.
func (c RegistryCredential) GoString() string { return "store." + c.String() }

// LogValue logs the credential without its password.
func (c RegistryCredential) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("server", c.Server),
		slog.String("username", c.Username),
		slog.String("password", secret(c.Password)),
	)
}

// registryDisk is RegistryCredential as stored: the same fields, none of
// the methods.
type registryDisk RegistryCredential

// MarshalJSON encodes the credential with its password redacted.
func (c RegistryCredential) MarshalJSON() ([]byte, error) {
	d := registryDisk(c)
	d.Password = secret(d.Password)
	return json.Marshal(d)
}

// PutRegistry creates or replaces the credential called c.Name.
func (s *Store) PutRegistry(c RegistryCredential) error {
	if err := checkKey("registry", c.Name); err != nil {
		return fmt.Errorf("put registry: %w", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx, bucketRegistries, c.Name, registryDisk(c))
	}); err != nil {
		return fmt.Errorf("put registry %s: %w", c.Name, err)
	}
	return nil
}

// Registry returns one credential; false if there is none by that name.
func (s *Store) Registry(name string) (RegistryCredential, bool, error) {
	if err := checkKey("registry", name); err != nil {
		return RegistryCredential{}, false, fmt.Errorf("read registry: %w", err)
	}
	var (
		c  RegistryCredential
		ok bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		var d registryDisk
		d, ok, err = getJSON[registryDisk](tx, bucketRegistries, name)
		c = RegistryCredential(d)
		return err
	})
	if err != nil {
		return RegistryCredential{}, false, fmt.Errorf("read registry %s: %w", name, err)
	}
	return c, ok, nil
}

// Registries returns every credential, ordered by name.
func (s *Store) Registries() ([]RegistryCredential, error) {
	var disk []registryDisk
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		disk, err = listJSON[registryDisk](tx, bucketRegistries, s.log)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list registries: %w", err)
	}
	out := make([]RegistryCredential, len(disk))
	for i, d := range disk {
		out[i] = RegistryCredential(d)
	}
	return out, nil
}

// DeleteRegistry removes a credential; deleting a missing one is not an
// error.
func (s *Store) DeleteRegistry(name string) error {
	if err := checkKey("registry", name); err != nil {
		return fmt.Errorf("delete registry: %w", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return deleteKey(tx, bucketRegistries, name)
	}); err != nil {
		return fmt.Errorf("delete registry %s: %w", name, err)
	}
	return nil
}
