package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "berth")
	path := filepath.Join(dir, "state.db")
	s := openAt(t, path)
	if !s.Fresh() {
		t.Error("a new file is not reported fresh")
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("new state file mode = %04o, want 0600", m)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("new state directory mode = %04o, want 0700", m)
	}
	if err := s.PutRegistry(RegistryCredential{Name: "r", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Someone loosened the mode: Open tightens it and keeps the data.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	log, buf := newLogger()
	s, err := Open(path, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m := mode(t, path); m != 0o600 {
		t.Errorf("reopened state file mode = %04o, want 0600", m)
	}
	if s.Fresh() {
		t.Error("an existing file is reported fresh")
	}
	if _, ok, err := s.Registry("r"); err != nil || !ok {
		t.Fatalf("Registry after reopen = %v, %v", ok, err)
	}
	if !strings.Contains(buf.String(), "from=0644") {
		t.Errorf("no log line about the tightened mode:\n%s", buf)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	first := openAt(t, path)
	_ = first

	const timeout = 300 * time.Millisecond
	start := time.Now()
	s, err := Open(path, Options{Timeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) || !errors.Is(err, berrors.ErrTimeout) {
		t.Fatalf("second Open = %v; want ErrLocked and bbolt ErrTimeout", err)
	}
	want := fmt.Sprintf("state file %s is locked by another process (is berthd already running?)", path)
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if elapsed < timeout-50*time.Millisecond || elapsed > timeout+time.Second {
		t.Errorf("second Open gave up after %v, timeout %v", elapsed, timeout)
	}
	// The locked file was neither quarantined nor changed.
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Errorf("locked file was quarantined: %v", m)
	}
}

// populatedDB writes a valid state file large enough to span many pages.
func populatedDB(t *testing.T, path string) []byte {
	t.Helper()
	log, _ := newLogger()
	s, err := Open(path, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveIdentity(Identity{NuvlaboxID: "nuvlabox/1", APISecret: "x"}); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		r := testApp(fmt.Sprintf("app-%04d", i))
		r.Params = map[string]string{"blob": strings.Repeat("p", 500)}
		if err := s.PutApp(r); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.BeginJob(fmt.Sprintf("job/%04d", i), "start", r.App.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDamagedFileIsQuarantined(t *testing.T) {
	valid := populatedDB(t, filepath.Join(t.TempDir(), "valid.db"))
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}

	tests := []struct {
		name       string
		content    []byte
		quarantine bool
		logSays    string
	}{
		{"16 KiB of zeros", make([]byte, 16<<10), true, "damaged"},
		{"valid file truncated to a third", valid[:len(valid)/3], true, "damaged"},
		{"random garbage", garbage, true, "damaged"},
		{"short garbage", garbage[:100], true, "damaged"},
		{"zeroed meta pages", append(make([]byte, 2*4096), valid[2*4096:]...), true, "damaged"},
		{"0-byte file", []byte{}, false, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			log, buf := newLogger()
			s, err := Open(path, Options{Logger: log, Timeout: time.Second})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()

			// An empty, usable store.
			if !s.Fresh() {
				t.Error("store not reported fresh")
			}
			if _, ok, err := s.Identity(); err != nil || ok {
				t.Errorf("Identity = %v, %v; want none", ok, err)
			}
			if list, err := s.Apps(); err != nil || len(list) != 0 {
				t.Errorf("Apps = %d, %v; want none", len(list), err)
			}
			if err := s.PutApp(testApp("after")); err != nil {
				t.Errorf("PutApp on the fresh store: %v", err)
			}

			moved, _ := filepath.Glob(path + ".corrupt-*")
			if !tt.quarantine {
				if len(moved) != 0 || s.Quarantined() != "" {
					t.Fatalf("quarantined %v (%q), want nothing", moved, s.Quarantined())
				}
				if !strings.Contains(buf.String(), tt.logSays) || !strings.Contains(buf.String(), path) {
					t.Errorf("log does not say %q about %s:\n%s", tt.logSays, path, buf)
				}
				return
			}
			if len(moved) != 1 || moved[0] != s.Quarantined() {
				t.Fatalf("quarantined files %v, Quarantined() = %q", moved, s.Quarantined())
			}
			kept, err := os.ReadFile(moved[0])
			if err != nil || !bytes.Equal(kept, tt.content) {
				t.Errorf("the damaged file was not kept as it was (err %v)", err)
			}
			if m := mode(t, moved[0]); m != 0o600 {
				t.Errorf("quarantined file mode = %04o, want 0600", m)
			}
			var warnings []string
			for _, l := range strings.Split(buf.String(), "\n") {
				if strings.Contains(l, "level=WARN") {
					warnings = append(warnings, l)
				}
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], moved[0]) || !strings.Contains(warnings[0], tt.logSays) {
				t.Errorf("want one warning naming %s, got:\n%s", moved[0], buf)
			}

			// The fresh file is healthy: the next start does not quarantine again.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := openAt(t, path)
			if s2.Quarantined() != "" || s2.Fresh() {
				t.Errorf("second start: quarantined %q, fresh %v", s2.Quarantined(), s2.Fresh())
			}
			if _, ok, err := s2.App("after"); err != nil || !ok {
				t.Errorf("App written after quarantine = %v, %v", ok, err)
			}
		})
	}
}

// Random damage anywhere in a valid file must never crash or hang Open, nor
// make it fail: each result is either a usable store or a quarantined file
// and a fresh store.
func TestRandomDamageNeverCrashes(t *testing.T) {
	valid := populatedDB(t, filepath.Join(t.TempDir(), "valid.db"))
	rng := rand.New(rand.NewPCG(7, 11))
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	quarantined := 0
	const rounds = 150
	for round := range rounds {
		content := slices.Clone(valid)
		switch round % 3 {
		case 0: // a run of random bytes near the start of a page
			page := 2 + rng.IntN(len(content)/4096-2)
			off := page*4096 + rng.IntN(64)
			for i := range 1 + rng.IntN(32) {
				content[off+i] = byte(rng.Uint32())
			}
		case 1: // a few flipped bits anywhere
			for range 1 + rng.IntN(8) {
				content[rng.IntN(len(content))] ^= byte(1 << rng.IntN(8))
			}
		case 2: // truncated anywhere
			content = content[:rng.IntN(len(content))]
		}
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{Timeout: time.Second})
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		if q := s.Quarantined(); q != "" {
			quarantined++
			_ = os.Remove(q)
		}
		if _, err := s.Apps(); err != nil {
			t.Errorf("round %d: Apps: %v", round, err)
		}
		if _, err := s.Jobs(); err != nil {
			t.Errorf("round %d: Jobs: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(path)
	}
	t.Logf("%d of %d damaged files were quarantined", quarantined, rounds)
	if quarantined == 0 {
		t.Error("no damaged file was detected")
	}
}

func TestNewerSchemaIsRefusedUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	if err := s.PutApp(testApp("keep-me")); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte("99"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fiBefore, _ := os.Stat(path)

	_, err = Open(path, Options{Timeout: time.Second})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open = %v, want ErrNewerSchema", err)
	}
	if !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file and its version", err)
	}
	after, _ := os.ReadFile(path)
	fiAfter, _ := os.Stat(path)
	if !bytes.Equal(before, after) || !fiBefore.ModTime().Equal(fiAfter.ModTime()) {
		t.Error("Open modified a file with a newer schema")
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Errorf("newer file was quarantined: %v", m)
	}
	// The lock was released.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("file still locked after refusing it: %v", err)
	}
	db.Close()
}

func TestUnreadableSchemaVersionIsQuarantined(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte("vier"))
	}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if s.Quarantined() == "" || !s.Fresh() {
		t.Fatalf("quarantined %q, fresh %v", s.Quarantined(), s.Fresh())
	}
}

func TestMigrationsRunInOrderOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	var ran []int
	step := func(v int) migration {
		return migration{version: v, name: fmt.Sprintf("step %d", v), apply: func(tx *bolt.Tx) error {
			// Each migration sees the previous one's work.
			b, err := tx.CreateBucketIfNotExists([]byte("trail"))
			if err != nil {
				return err
			}
			if v > 2 && b.Get([]byte(fmt.Sprint(v-1))) == nil {
				return fmt.Errorf("migration %d ran before %d", v, v-1)
			}
			ran = append(ran, v)
			return b.Put([]byte(fmt.Sprint(v)), []byte("done"))
		}}
	}
	all := []migration{{version: 1, name: "buckets", apply: createBuckets}, step(2), step(3), step(4)}

	openWith := func(migs []migration) (*Store, error) {
		log, _ := newLogger()
		return open(path, Options{Logger: log, Timeout: time.Second}, migs)
	}
	version := func(s *Store) int {
		var v int
		_ = s.db.View(func(tx *bolt.Tx) error { v, _ = readVersion(tx); return nil })
		return v
	}

	s, err := openWith(all[:3])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ran, []int{2, 3}) || version(s) != 3 || !s.Fresh() {
		t.Fatalf("first open ran %v, version %d", ran, version(s))
	}
	s.Close()

	ran = nil
	s, err = openWith(all[:3])
	if err != nil {
		t.Fatal(err)
	}
	if len(ran) != 0 || s.Fresh() {
		t.Fatalf("reopen ran %v again", ran)
	}
	s.Close()

	ran = nil
	s, err = openWith(all)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ran, []int{4}) || version(s) != 4 || s.Fresh() {
		t.Fatalf("upgrade ran %v, version %d", ran, version(s))
	}
	s.Close()

	// A failing migration rolls back everything, version included.
	ran = nil
	failing := append(slices.Clone(all), step(5), migration{version: 6, name: "fails", apply: func(tx *bolt.Tx) error {
		return errors.New("boom")
	}})
	if _, err := openWith(failing); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("open with a failing migration = %v", err)
	}
	s, err = openWith(all)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if version(s) != 4 {
		t.Fatalf("version after a failed migration = %d, want 4", version(s))
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("trail")).Get([]byte("5")) != nil {
			t.Error("migration 5 was committed although 6 failed")
		}
		return nil
	})

	// Bad migration lists are refused, not run.
	for _, bad := range [][]migration{nil, {step(2)}, {all[0], step(3)}, {{version: 1}}} {
		if _, err := open(filepath.Join(t.TempDir(), "x.db"), Options{}, bad); err == nil {
			t.Errorf("open accepted migrations %v", bad)
		}
	}
}

func TestSchemaIsCurrent(t *testing.T) {
	if err := validateMigrations(migrations); err != nil {
		t.Fatal(err)
	}
	s := openTemp(t)
	err := s.db.View(func(tx *bolt.Tx) error {
		v, err := readVersion(tx)
		if err != nil || v != SchemaVersion() || v != 1 {
			return fmt.Errorf("schema version %d (%v), want %d", v, err, SchemaVersion())
		}
		for _, b := range [][]byte{bucketMeta, bucketIdentity, bucketApps, bucketJobs, bucketRegistries} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("bucket %s missing", b)
			}
		}
		if tx.Bucket(bucketMeta).Get(keyCreated) == nil {
			return errors.New("no created time")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHelperHoldLock is not a test: TestLockedByAnotherProcess runs the test
// binary as a second berthd that holds the state file until stdin closes.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("BERTH_STORE_TEST_HOLD")
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = s.Close()
	os.Exit(0)
}

func TestLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "BERTH_STORE_TEST_HOLD="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	start := time.Now()
	_, err = Open(path, Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !errors.Is(err, berrors.ErrTimeout) {
		t.Fatalf("Open while another process holds the file = %v", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("gave up after %v", elapsed)
	}

	// Once the other process exits, the file opens, intact.
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	s := openAt(t, path)
	if s.Quarantined() != "" {
		t.Fatal("file quarantined after a lock conflict")
	}
}
