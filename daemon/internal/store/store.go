package store

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DefaultTimeout is how long Open waits for the file lock by default.
const DefaultTimeout = 2 * time.Second

const (
	fileMode = 0o600
	dirMode  = 0o700
	// corruptTimeFormat is the UTC timestamp in <path>.corrupt-<timestamp>.
	corruptTimeFormat = "20060102T150405Z"
	// maxCheckErrors bounds how many consistency errors end up in the log.
	maxCheckErrors = 3
)

// Errors callers can test with errors.Is.
var (
	// ErrLocked means another process (normally a running berthd) holds the
	// state file. Errors matching it also match bbolt's errors.ErrTimeout.
	ErrLocked = errors.New("state file is locked by another process")
	// ErrNewerSchema means the file was written by a newer berthd; it is left
	// untouched.
	ErrNewerSchema = errors.New("state file schema is newer than this berthd supports")
	// ErrNotFound means the record an update refers to does not exist.
	ErrNotFound = errors.New("not found")
)

// Options tune Open.
type Options struct {
	// Timeout bounds the wait for the file lock; zero or negative means
	// DefaultTimeout (bbolt itself would wait forever).
	Timeout time.Duration
	// Logger receives the store's few log lines; nil discards them.
	Logger *slog.Logger
}

// Store is berthd's state file. Its methods are safe for concurrent use; each
// runs one short bbolt transaction.
type Store struct {
	db          *bolt.DB
	path        string
	log         *slog.Logger
	now         func() time.Time
	fresh       bool
	quarantined string
}

// lockedError is returned when the file lock times out. It reads as one clear
// sentence and matches both ErrLocked and bbolt's ErrTimeout.
type lockedError struct {
	path string
	err  error
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("state file %s is locked by another process (is berthd already running?)", e.path)
}

func (e *lockedError) Unwrap() []error { return []error{ErrLocked, e.err} }

// damageError says the file's content is unusable; Open quarantines it.
type damageError struct{ reason string }

func (e *damageError) Error() string { return "damaged state file: " + e.reason }

// Open opens (creating if needed) the state file at path, quarantines it and
// starts fresh if it is damaged, and brings its schema up to date.
func Open(path string, opts Options) (*Store, error) {
	return open(path, opts, migrations)
}

func open(path string, opts Options, migs []migration) (*Store, error) {
	if path == "" {
		return nil, errors.New("open state: empty path")
	}
	if err := validateMigrations(migs); err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "store")

	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return nil, fmt.Errorf("create state directory %s: %w", dir, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}

	s := &Store{path: path, log: log, now: func() time.Time { return time.Now().UTC() }}

	existed, wasEmpty := false, false
	if fi, err := os.Stat(path); err == nil {
		existed, wasEmpty = true, fi.Size() == 0
	}

	db, err := openChecked(path, opts.Timeout, log)
	var damage *damageError
	if errors.As(err, &damage) {
		moved, qerr := quarantine(path, s.now())
		if qerr != nil {
			return nil, fmt.Errorf("state file %s is damaged (%s) and could not be moved aside: %w", path, damage.reason, qerr)
		}
		log.Warn("state file was damaged: moved it aside and starting with fresh state; apps running in Docker are recovered by their labels",
			"path", path, "moved_to", moved, "reason", damage.reason)
		s.quarantined = moved
		existed, wasEmpty = false, false
		db, err = openChecked(path, opts.Timeout, log)
	}
	var locked *lockedError
	if errors.As(err, &locked) {
		return nil, err // already one clear sentence
	}
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	s.db = db
	if !existed {
		syncDir(dir) // make the new file's directory entry durable
	}
	if wasEmpty {
		log.Warn("state file was empty (0 bytes): starting with fresh state; apps running in Docker are recovered by their labels", "path", path)
	}

	fresh, err := s.migrate(migs)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.fresh = fresh
	return s, nil
}

// openChecked opens, locks and checks the state file, then hands the same
// descriptor to bbolt and verifies what bbolt sees. A damaged file comes back
// as a damageError; every panic (including a memory fault on the mapping) is
// recovered into one. The descriptor is closed on every failure, which
// releases the lock.
func openChecked(path string, timeout time.Duration, log *slog.Logger) (db *bolt.DB, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := lockFile(f, timeout); err != nil {
		_ = f.Close()
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, &lockedError{path: path, err: err}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := enforceMode(f, log); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := checkFile(f); err != nil {
		_ = f.Close()
		return nil, err
	}

	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				closeQuietly(db)
			}
			_ = f.Close() // bbolt may have panicked before owning it; a second Close is harmless
			db, err = nil, &damageError{reason: fmt.Sprintf("bbolt panicked: %v", r)}
		}
	}()
	bopts := &bolt.Options{
		Timeout:      timeout,
		FreelistType: bolt.FreelistArrayType,
		// bbolt uses the descriptor already locked and checked above.
		OpenFile: func(string, int, os.FileMode) (*os.File, error) { return f, nil },
	}
	db, err = bolt.Open(path, fileMode, bopts)
	if err != nil {
		// bbolt closed f.
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, &lockedError{path: path, err: err}
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
			errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping),
			strings.Contains(err.Error(), "file size too small"):
			return nil, &damageError{reason: err.Error()}
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := verify(db); err != nil {
		closeQuietly(db)
		return nil, err
	}
	return db, nil
}

// enforceMode makes the state file 0600, whatever it was.
func enforceMode(f *os.File, log *slog.Logger) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if fi.Mode().Perm() == fileMode {
		return nil
	}
	if err := f.Chmod(fileMode); err != nil {
		return fmt.Errorf("restrict %s to mode %04o: %w", f.Name(), fileMode, err)
	}
	if fi.Size() > 0 {
		log.Warn("state file permissions were too open; restricted them", "path", f.Name(),
			"from", fmt.Sprintf("%04o", fi.Mode().Perm()), "to", fmt.Sprintf("%04o", fileMode))
	}
	return nil
}

// verify reads every bucket, key and value through bbolt in this goroutine
// (so that any panic or fault is recovered by openChecked) and then runs
// bbolt's consistency check. checkFile has already made sure that neither
// can run off the file or loop on a damaged page: in bbolt v1.4 tx.Check runs
// in a goroutine of its own, where a panic could not be recovered.
func verify(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		h := crc32.NewIEEE()
		if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			_, _ = h.Write(name)
			if b == nil {
				return nil // a plain value at the top level; tx.Check judges it
			}
			return walkBucket(b, h)
		}); err != nil {
			return err
		}

		var errs []string
		n := 0
		for err := range tx.Check() {
			n++
			if len(errs) < maxCheckErrors {
				errs = append(errs, err.Error())
			}
		}
		if n > 0 {
			reason := fmt.Sprintf("consistency check found %d error(s): %s", n, strings.Join(errs, "; "))
			return &damageError{reason: reason}
		}
		_, err := readVersion(tx)
		return err
	})
}

func walkBucket(b *bolt.Bucket, h io.Writer) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		_, _ = h.Write(k)
		if v != nil {
			_, _ = h.Write(v)
			continue
		}
		if child := b.Bucket(k); child != nil {
			if err := walkBucket(child, h); err != nil {
				return err
			}
		}
	}
	return nil
}

func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

// quarantine renames the damaged file to <path>.corrupt-<timestamp>, adding
// a counter if that name is taken, and makes the rename durable.
func quarantine(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format(corruptTimeFormat)
	dst := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		if i > 100 {
			return "", fmt.Errorf("no free name for %s", base)
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("rename %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return dst, nil
}

// syncDir fsyncs a directory, best effort: some filesystems refuse it.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// Close closes the file and releases its lock. It is safe to call twice.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state %s: %w", s.path, err)
	}
	return nil
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Fresh reports whether Open initialised the schema: a new file, an empty
// file, or a fresh file after the old one was quarantined.
func (s *Store) Fresh() bool { return s.fresh }

// Quarantined is where Open moved a damaged state file, or "".
func (s *Store) Quarantined() string { return s.quarantined }

// Backup writes a consistent copy of the whole file to w while the store
// stays usable (a read transaction; writers are not blocked). The copy holds
// secrets: give it mode 0600.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup state %s: %w", s.path, err)
	}
	return n, nil
}
