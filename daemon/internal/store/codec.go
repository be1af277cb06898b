package store

import (
	"encoding/json"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"
)

// redacted stands in for a secret in String, GoString and LogValue output.
const redacted = "[REDACTED]"

// secret renders a secret for humans: whether it is set, never its value.
func secret(v string) string {
	if v == "" {
		return ""
	}
	return redacted
}

// bucket returns a top-level bucket that the schema guarantees exists.
func bucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket %s missing from state file", name)
	}
	return b, nil
}

// getJSON decodes the value at bucket/key. json.Unmarshal copies everything
// it keeps, so nothing returned aliases the transaction's memory.
func getJSON[T any](tx *bolt.Tx, name []byte, key string) (T, bool, error) {
	var v T
	b, err := bucket(tx, name)
	if err != nil {
		return v, false, err
	}
	raw := b.Get([]byte(key))
	if raw == nil {
		return v, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, true, fmt.Errorf("decode %s/%s: %w", name, key, err)
	}
	return v, true, nil
}

func putJSON(tx *bolt.Tx, name []byte, key string, v any) error {
	b, err := bucket(tx, name)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", name, key, err)
	}
	if err := b.Put([]byte(key), raw); err != nil {
		return fmt.Errorf("write %s/%s: %w", name, key, err)
	}
	return nil
}

func deleteKey(tx *bolt.Tx, name []byte, key string) error {
	b, err := bucket(tx, name)
	if err != nil {
		return err
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete %s/%s: %w", name, key, err)
	}
	return nil
}

// listJSON decodes every value of a bucket in key order. A record that does
// not decode is skipped and logged by key, so it cannot hide the others.
func listJSON[T any](tx *bolt.Tx, name []byte, log *slog.Logger) ([]T, error) {
	b, err := bucket(tx, name)
	if err != nil {
		return nil, err
	}
	var out []T
	err = b.ForEach(func(k, raw []byte) error {
		if raw == nil {
			return nil // a nested bucket; the schema has none
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			log.Warn("skipping a state record that does not decode", "bucket", string(name), "key", string(k), "error", err.Error())
			return nil
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// checkKey rejects keys bbolt cannot store.
func checkKey(kind, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%s: empty id", kind)
	case len(key) > bolt.MaxKeySize:
		return fmt.Errorf("%s: id longer than %d bytes", kind, bolt.MaxKeySize)
	}
	return nil
}
