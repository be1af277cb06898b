// Package store is berthd's persistent state: one bbolt file (by default
// /var/lib/berth/state.db) that holds the box identity, the desired state of
// every app, the jobs journal and registry credentials.
//
// The file holds secrets (the box's api secret, deployment api secrets,
// registry passwords). It is created with mode 0600 in a directory created
// with mode 0700, an existing file is tightened to 0600 when opened, and no
// type in this package reveals a secret through String, GoString or LogValue.
//
// # Opening
//
// [Open] takes an exclusive flock on the file with a timeout (2s by default);
// a second process gets [ErrLocked] instead of hanging. Before bbolt maps the
// file, its structure is checked with ordinary reads (validate.go: meta pages,
// freelist, and every page of every bucket tree: ids, types, element bounds,
// overflow, cycles), because bbolt trusts its pages and a damaged one can make
// it panic in a goroutine of its own, fault, or loop for hours. bbolt then
// opens the same descriptor; every bucket, key and value is read in the
// calling goroutine with panics and memory faults recovered, and bbolt's
// tx.Check runs. A damaged file (any of these failing, or an unreadable
// schema version) is renamed to <path>.corrupt-<UTC timestamp, e.g.
// 20260102T150405Z>, one warning naming both paths is logged, and a fresh
// file is created in its place: berthd never crash-loops on its state file.
// Apps that were running survive in Docker and are recovered by their
// labels; the control plane re-sends what it wants. A pre-existing 0-byte
// file is treated as a fresh store (bbolt initialises it; there is nothing to
// keep) and a warning is logged. [Store.Fresh] and [Store.Quarantined] tell
// the caller that state was lost. I/O errors and a file locked by another
// process are returned as errors and never quarantine anything.
//
// # Schema (version 1)
//
// Every bucket is top level; every value is JSON (encoding/json, field names
// in kebab-case as in the struct tags of this package and of package apps).
//
//	meta/
//	  schema-version  -> JSON number, e.g. 1: the last migration applied
//	  created         -> JSON string, RFC 3339 UTC time the file was initialised
//	identity/
//	  box             -> Identity (nuvlabox-id, endpoint, insecure, api-key,
//	                     api-secret, status-id, state, activated)
//	apps/
//	  <app id>        -> AppRecord (app, desired, source, deployment-id,
//	                     job-id, updated, credentials{api-key,api-secret},
//	                     params{name: value}, error, session{type, name,
//	                     image, user-name, uid, gid, groups, token, cores,
//	                     ram-gb, fixed, profile, display, started, expiry,
//	                     last-activity, phase, message, addr,
//	                     events[{type,reason,message,first,last}]} for
//	                     locally launched sessions)
//	jobs/
//	  <job id>        -> JobRecord (seq, id, action, target, state,
//	                     steps[{at,name,detail}], message, return-code,
//	                     received, updated, reported)
//	  (bucket sequence: the last JobRecord.Seq handed out; orders the journal)
//	registries/
//	  <name>          -> RegistryCredential (name, server, username, password)
//
// App ids are Nuvla deployment uuids or local session ids; job ids are Nuvla
// job ids ("job/<uuid>"). Keys sort bytewise, so Apps and Registries come back
// ordered by key. Jobs are ordered by Seq, which the store assigns from the
// bucket's sequence when a job is first seen.
//
// # The jobs journal
//
// Every side effect of a job is recorded before it happens: [Store.BeginJob]
// records a job as "accepted" the moment it is received (and tells whether it
// was already known, so repeated job ids from the control plane are
// de-duplicated), [Store.JobStep] appends a step (and moves the job to
// "running") before the step's side effect, [Store.FinishJob] records the
// final state, and [Store.MarkJobReported] records that the control plane
// acknowledged it. After a crash, [Store.UnfinishedJobs] lists the jobs to
// resume or fail and [Store.UnreportedJobs] the final states still to report.
// [Store.PruneJobs] drops old records that are both finished and reported.
//
// # Migrations
//
// The schema version is the version of the last migration applied. The
// migrations slice in schema.go is ordered by version, starting at 1 with no
// gaps; at Open every migration newer than the file's version runs, in order,
// in one read-write transaction that also records the new version, so a
// migration runs exactly once and a failed one leaves the file as it was.
// A file whose schema version is newer than this binary knows is refused with
// [ErrNewerSchema] and left untouched.
//
// To change the schema: update this comment, append a migration with the next
// version, and add a test for it.
//
// # Reading many records
//
// Apps, Jobs and Registries skip (and log, by key only) a record that does not
// decode, so one damaged record never hides the others; the single-record
// getters return the decode error.
package store
