package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// checkPath runs checkFile on the file at path.
func checkPath(t *testing.T, path string) error {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return checkFile(f)
}

// The structural check must accept every file bbolt writes: nested and
// inline buckets, values spanning overflow pages, a freelist full of freed
// pages, other page sizes, and files written without a synced freelist.
func TestCheckFileAcceptsValidFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts bolt.Options
	}{
		{"default", bolt.Options{}},
		{"1 KiB pages", bolt.Options{PageSize: 1024}},
		{"16 KiB pages", bolt.Options{PageSize: 16 << 10}},
		{"no freelist sync", bolt.Options{NoFreelistSync: true}},
		{"map freelist", bolt.Options{FreelistType: bolt.FreelistMapType}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			opts := tc.opts
			opts.Timeout = time.Second
			db, err := bolt.Open(path, 0o600, &opts)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			for round := range 20 {
				err := db.Update(func(tx *bolt.Tx) error {
					top, err := tx.CreateBucketIfNotExists([]byte(fmt.Sprintf("top-%d", round%4)))
					if err != nil {
						return err
					}
					nested, err := top.CreateBucketIfNotExists([]byte("nested"))
					if err != nil {
						return err
					}
					// A small bucket stays inline in its parent's leaf.
					if _, err := nested.CreateBucketIfNotExists([]byte(fmt.Sprintf("inline-%d", round))); err != nil {
						return err
					}
					for i := range 50 {
						v := make([]byte, rng.IntN(300))
						if i == 0 {
							v = make([]byte, 3*(opts.PageSize+4096)) // spans overflow pages
						}
						if err := nested.Put([]byte(fmt.Sprintf("k-%d-%d", round, i)), v); err != nil {
							return err
						}
					}
					if round > 2 { // free pages as the file evolves
						old := []byte(fmt.Sprintf("top-%d", (round-2)%4))
						if b := tx.Bucket(old); b != nil {
							return b.DeleteBucket([]byte("nested"))
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if err := checkPath(t, path); err != nil {
				t.Fatalf("checkFile rejects a valid file: %v", err)
			}
			if tc.opts.PageSize != 0 {
				return // berthd always writes the default page size; bbolt reads any
			}
			s := openAt(t, path)
			if s.Quarantined() != "" {
				t.Fatalf("a valid file was quarantined")
			}
		})
	}
}

// findPage returns the id of the first page whose header has the flags.
func findPage(content []byte, flags uint16) uint64 {
	for id := uint64(2); (id+1)*4096 <= uint64(len(content)); id++ {
		p := content[id*4096:]
		if ne.Uint64(p) == id && ne.Uint16(p[8:]) == flags {
			return id
		}
	}
	return 0
}

// Damage that made bbolt loop for hours (a huge overflow count), recurse
// without end (a cycle) or panic in tx.Check's goroutine (a page that names
// another id) is refused before bbolt sees it.
func TestCheckFileRefusesHazards(t *testing.T) {
	valid := populatedDB(t, filepath.Join(t.TempDir(), "valid.db"))
	branch, leaf := findPage(valid, flagBranch), findPage(valid, flagLeaf)
	if branch == 0 || leaf == 0 {
		t.Fatal("no branch or leaf page in the test file")
	}
	for _, tc := range []struct {
		name   string
		damage func(b []byte)
		reason string
	}{
		{"huge overflow", func(b []byte) { ne.PutUint32(b[leaf*4096+12:], 0xF0000000) }, "overflows"},
		{"branch cycle", func(b []byte) { ne.PutUint64(b[branch*4096+16+8:], branch) }, "twice"},
		{"wrong page id", func(b []byte) { ne.PutUint64(b[leaf*4096:], leaf+1) }, "identifies itself"},
		{"huge element count", func(b []byte) { ne.PutUint16(b[leaf*4096+10:], 0xFFFF) }, "count"},
		{"key outside page", func(b []byte) { ne.PutUint32(b[leaf*4096+16+4:], 1<<30) }, "outside the page"},
		{"child beyond file", func(b []byte) { ne.PutUint64(b[branch*4096+16+8:], 1<<40) }, "outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := slices.Clone(valid)
			tc.damage(content)
			path := filepath.Join(t.TempDir(), "state.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			err := checkPath(t, path)
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("checkFile = %v, want an error about %q", err, tc.reason)
			}
			log, buf := newLogger()
			s, err := Open(path, Options{Logger: log, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Quarantined() == "" || !strings.Contains(buf.String(), tc.reason) {
				t.Fatalf("not quarantined with reason %q:\n%s", tc.reason, buf)
			}
		})
	}
}

// Seeds run with every go test; explore further with
// go test -run '^$' -fuzz '^FuzzOpen$' -fuzztime 60s ./daemon/internal/store
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	log, _ := newLogger()
	s, err := Open(filepath.Join(dir, "seed.db"), Options{Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.PutApp(testApp("seed")); err != nil {
		f.Fatal(err)
	}
	if _, _, err := s.BeginJob("job/seed", "start", "seed"); err != nil {
		f.Fatal(err)
	}
	var seed bytes.Buffer
	if _, err := s.Backup(&seed); err != nil {
		f.Fatal(err)
	}
	_ = s.Close()
	f.Add(seed.Bytes())
	f.Add([]byte{})
	f.Add(make([]byte, 8192))

	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "state.db")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{Timeout: time.Second})
		if errors.Is(err, ErrNewerSchema) {
			return // a mutated schema version; refusing it is right
		}
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		if _, err := s.Apps(); err != nil {
			t.Fatalf("Apps: %v", err)
		}
		if _, err := s.Jobs(); err != nil {
			t.Fatalf("Jobs: %v", err)
		}
		if err := s.PutApp(testApp("after")); err != nil {
			t.Fatalf("PutApp: %v", err)
		}
	})
}
