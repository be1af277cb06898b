//go:build unix

package store

import (
	"errors"
	"os"
	"syscall"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// lockRetry is how often a held lock is retried, as bbolt does.
const lockRetry = 50 * time.Millisecond

// lockFile takes an exclusive flock on f, waiting up to timeout. It reports
// bbolt's ErrTimeout when another open file description keeps the lock. bbolt
// later takes the same lock on the same descriptor, which succeeds at once,
// and releases it on Close.
func lockFile(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
		if time.Until(deadline) <= 0 {
			return berrors.ErrTimeout
		}
		time.Sleep(min(lockRetry, max(time.Until(deadline), time.Millisecond)))
	}
}
