package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Job states. Accepted and running are unfinished; succeeded and failed are
// final.
const (
	JobAccepted  = "accepted"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// JobRecord is one job in the journal. Steps are recorded before their side
// effects, so after a crash the last step says how far the job got. Never put
// a secret in a step's detail or a job's message: both are shown and logged.
type JobRecord struct {
	// Seq orders the journal: the store assigns it when the job is first seen.
	Seq    uint64 `json:"seq"`
	ID     string `json:"id"`
	Action string `json:"action"`
	Target string `json:"target,omitempty"`
	// State is JobAccepted, JobRunning, JobSucceeded or JobFailed.
	State      string    `json:"state"`
	Steps      []Step    `json:"steps,omitempty"`
	Message    string    `json:"message,omitempty"`
	ReturnCode int       `json:"return-code"`
	Received   time.Time `json:"received"`
	Updated    time.Time `json:"updated"`
	// Reported is true once the control plane acknowledged the final state.
	Reported bool `json:"reported,omitempty"`
}

// Step is one journaled step of a job.
type Step struct {
	At     time.Time `json:"at"`
	Name   string    `json:"name"`
	Detail string    `json:"detail,omitempty"`
}

// Finished reports whether the job reached a final state.
func (j *JobRecord) Finished() bool { return j.State == JobSucceeded || j.State == JobFailed }

// BeginJob records a newly received job as accepted. If the job is already
// in the journal it is returned unchanged with known set, which is how
// repeated job ids from the control plane are de-duplicated.
func (s *Store) BeginJob(id, action, target string) (rec JobRecord, known bool, err error) {
	if err := checkKey("job", id); err != nil {
		return JobRecord{}, false, fmt.Errorf("begin job: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		var err error
		rec, known, err = getJSON[JobRecord](tx, bucketJobs, id)
		if err != nil || known {
			return err
		}
		b, err := bucket(tx, bucketJobs)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("next job sequence: %w", err)
		}
		now := s.now()
		rec = JobRecord{Seq: seq, ID: id, Action: action, Target: target, State: JobAccepted, Received: now, Updated: now}
		return putJSON(tx, bucketJobs, id, rec)
	})
	if err != nil {
		return JobRecord{}, false, fmt.Errorf("begin job %s: %w", id, err)
	}
	return rec, known, nil
}

// updateJob applies fn to the stored job in one transaction; fn returns
// false to skip the write.
func (s *Store) updateJob(id string, fn func(*JobRecord) (bool, error)) error {
	if err := checkKey("job", id); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		rec, ok, err := getJSON[JobRecord](tx, bucketJobs, id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		write, err := fn(&rec)
		if err != nil || !write {
			return err
		}
		rec.Updated = s.now()
		return putJSON(tx, bucketJobs, id, rec)
	})
}

// JobStep appends a step to an unfinished job and marks it running. Call it
// before the step's side effect.
func (s *Store) JobStep(id, name, detail string) error {
	err := s.updateJob(id, func(j *JobRecord) (bool, error) {
		if j.Finished() {
			return false, fmt.Errorf("job is already %s", j.State)
		}
		j.State = JobRunning
		j.Steps = append(j.Steps, Step{At: s.now(), Name: name, Detail: detail})
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("journal step %q of job %s: %w", name, id, err)
	}
	return nil
}

// FinishJob records a job's final state (JobSucceeded or JobFailed).
// Finishing a job again with the same state is a no-op, so a resumed job
// can finish idempotently; a different final state is an error.
func (s *Store) FinishJob(id string, state, message string, rc int) error {
	if state != JobSucceeded && state != JobFailed {
		return fmt.Errorf("finish job %s: state %q is not final", id, state)
	}
	err := s.updateJob(id, func(j *JobRecord) (bool, error) {
		if j.Finished() {
			if j.State == state {
				return false, nil
			}
			return false, fmt.Errorf("job is already %s", j.State)
		}
		j.State, j.Message, j.ReturnCode, j.Reported = state, message, rc, false
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("finish job %s: %w", id, err)
	}
	return nil
}

// MarkJobReported records that the control plane acknowledged a finished
// job's final state.
func (s *Store) MarkJobReported(id string) error {
	err := s.updateJob(id, func(j *JobRecord) (bool, error) {
		if !j.Finished() {
			return false, fmt.Errorf("job is still %s", j.State)
		}
		if j.Reported {
			return false, nil
		}
		j.Reported = true
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("mark job %s reported: %w", id, err)
	}
	return nil
}

// Job returns one job; false if it is not in the journal.
func (s *Store) Job(id string) (JobRecord, bool, error) {
	if err := checkKey("job", id); err != nil {
		return JobRecord{}, false, fmt.Errorf("read job: %w", err)
	}
	var (
		rec JobRecord
		ok  bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, ok, err = getJSON[JobRecord](tx, bucketJobs, id)
		return err
	})
	if err != nil {
		return JobRecord{}, false, fmt.Errorf("read job %s: %w", id, err)
	}
	return rec, ok, nil
}

func (s *Store) jobs() ([]JobRecord, error) {
	var out []JobRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = listJSON[JobRecord](tx, bucketJobs, s.log)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	slices.SortFunc(out, func(a, b JobRecord) int { return compareUint(a.Seq, b.Seq) })
	return out, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Jobs returns the whole journal, newest first.
func (s *Store) Jobs() ([]JobRecord, error) {
	out, err := s.jobs()
	slices.Reverse(out)
	return out, err
}

// UnfinishedJobs returns the accepted and running jobs, oldest first: after
// a restart, these are to be resumed or failed.
func (s *Store) UnfinishedJobs() ([]JobRecord, error) {
	out, err := s.jobs()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(j JobRecord) bool { return j.Finished() }), nil
}

// UnreportedJobs returns the finished jobs whose final state the control
// plane has not acknowledged yet, oldest first.
func (s *Store) UnreportedJobs() ([]JobRecord, error) {
	out, err := s.jobs()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(j JobRecord) bool { return !j.Finished() || j.Reported }), nil
}

// PruneJobs deletes the finished and reported jobs beyond the newest keep of
// them. Unfinished and unreported jobs are never pruned.
func (s *Store) PruneJobs(keep int) error {
	if keep < 0 {
		return fmt.Errorf("prune jobs: negative keep %d", keep)
	}
	var pruned int
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketJobs)
		if err != nil {
			return err
		}
		type done struct {
			key []byte
			seq uint64
		}
		var candidates []done
		if err := b.ForEach(func(k, raw []byte) error {
			var j JobRecord
			if raw == nil || json.Unmarshal(raw, &j) != nil {
				return nil // not a job we understand; leave it alone
			}
			if j.Finished() && j.Reported {
				candidates = append(candidates, done{key: append([]byte(nil), k...), seq: j.Seq})
			}
			return nil
		}); err != nil {
			return fmt.Errorf("scan jobs: %w", err)
		}
		if len(candidates) <= keep {
			return nil
		}
		slices.SortFunc(candidates, func(a, b done) int { return compareUint(b.seq, a.seq) })
		for _, c := range candidates[keep:] {
			if err := b.Delete(c.key); err != nil {
				return fmt.Errorf("delete job %s: %w", c.key, err)
			}
		}
		pruned = len(candidates) - keep
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune jobs: %w", err)
	}
	if pruned > 0 {
		s.log.Debug("pruned job journal", "deleted", pruned, "kept", keep)
	}
	return nil
}
