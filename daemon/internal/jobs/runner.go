// Package jobs runs the jobs a Nuvla control plane hands to the box.
//
// Job ids arrive with every heartbeat and telemetry answer until the job is
// final, so the Runner de-duplicates them: a job is queued once, runs once,
// and its final state is reported until the server has acknowledged it.
// Jobs run one at a time, as NuvlaEdge runs them.
//
// Every job is journaled in the store before its first side effect and
// before each further one. After a crash, a job the journal shows as
// running is run again from the start (every handler is idempotent), and a
// finished job whose result never reached the server is reported again,
// not re-run.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berth-edge/berth/daemon/internal/nuvla"
	"github.com/berth-edge/berth/daemon/internal/reconcile"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// SupportedVersion is the only job version berthd runs, as Nuvla's job
// engine does.
const SupportedVersion = 2

// Job states as Nuvla names them.
const (
	StateQueued   = "QUEUED"
	StateRunning  = "RUNNING"
	StateSuccess  = "SUCCESS"
	StateFailed   = "FAILED"
	StateCanceled = "CANCELED"
)

// Job is a Nuvla job resource.
type Job struct {
	ID                string `json:"id"`
	Action            string `json:"action"`
	State             string `json:"state"`
	Version           int    `json:"version"`
	Progress          int    `json:"progress"`
	ExecutionMode     string `json:"execution-mode"`
	Payload           string `json:"payload"`
	TargetResource    Href   `json:"target-resource"`
	AffectedResources []Href `json:"affected-resources"`
}

// Href is a reference to a resource.
type Href struct {
	Href string `json:"href"`
}

// Final reports whether the job can no longer change.
func (j *Job) Final() bool {
	return j.State == StateSuccess || j.State == StateFailed || j.State == StateCanceled
}

// Options wire a Runner.
type Options struct {
	// Box is the box's own session.
	Box *nuvla.Client
	// Session opens another session with a deployment's api key.
	Session func(ctx context.Context, key, secret string) (*nuvla.Client, error)
	Store   *store.Store
	Recon   *reconcile.Reconciler
	// Logs returns the last lines of a container's output, to explain a
	// container that stopped right after it started.
	Logs   func(ctx context.Context, containerID string, tail int) (string, error)
	Logger *slog.Logger
	// Changed is called whenever a job changes state.
	Changed func()
	// Timeout bounds one job (default 30 minutes: image pulls can be slow).
	Timeout time.Duration
	// Host serves the jobs that act on the box itself (reboot, update,
	// ssh keys, logs, Docker objects); see HostOptions.
	Host HostOptions
}

// Runner de-duplicates and runs jobs one at a time.
type Runner struct {
	opts     Options
	log      *slog.Logger
	handlers map[string]handler

	mu     sync.Mutex
	queued map[string]bool
	order  []string
	wake   chan struct{}

	// sessions are deployment sessions by api key, reused across jobs:
	// Nuvla asks for deployment_state often, and a login per job would
	// pile up sessions on the server.
	sessMu   sync.Mutex
	sessions map[string]*nuvla.Client
}

// journalKeep is how many finished, reported jobs the journal keeps.
const journalKeep = 500

// handler runs one job; the returned message is the job's status-message
// on success.
type handler func(ctx context.Context, jc *jobContext) (string, error)

// New returns a Runner; call Run to start it.
func New(opts Options) *Runner {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Minute
	}
	r := &Runner{opts: opts, log: opts.Logger, queued: map[string]bool{}, wake: make(chan struct{}, 1), sessions: map[string]*nuvla.Client{}}
	r.handlers = map[string]handler{
		"start_deployment":    r.startDeployment,
		"update_deployment":   r.updateDeployment,
		"stop_deployment":     r.stopDeployment,
		"deployment_state":    r.deploymentState,
		"deployment_state_10": r.deploymentState,
		"deployment_state_60": r.deploymentState,
		// Jobs that act on the box itself.
		"reboot_nuvlabox":         r.rebootBox,
		"fetch_nuvlabox_log":      r.fetchNuvlaboxLog,
		"fetch_deployment_log":    r.fetchDeploymentLog,
		"coe_resource_actions":    r.coeResourceActions,
		"nuvlabox_add_ssh_key":    r.addSSHKey,
		"nuvlabox_revoke_ssh_key": r.revokeSSHKey,
		"nuvlabox_update":         r.updateBox,
		"nuvlaedge_update":        r.updateBox,
	}
	r.opts.Host = r.opts.Host.withDefaults()
	return r
}

// Submit queues job ids that are not queued or running already. It never
// blocks.
func (r *Runner) Submit(ids ...string) {
	r.mu.Lock()
	added := false
	for _, id := range ids {
		if id == "" || r.queued[id] {
			continue
		}
		r.queued[id] = true
		r.order = append(r.order, id)
		added = true
	}
	r.mu.Unlock()
	if added {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// Pending returns the number of queued or running jobs.
func (r *Runner) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queued)
}

// Recover queues the jobs the journal shows as unfinished or unreported,
// so a restart finishes what a crash interrupted.
func (r *Runner) Recover() error {
	unfinished, err := r.opts.Store.UnfinishedJobs()
	if err != nil {
		return fmt.Errorf("read unfinished jobs: %w", err)
	}
	unreported, err := r.opts.Store.UnreportedJobs()
	if err != nil {
		return fmt.Errorf("read unreported jobs: %w", err)
	}
	for _, j := range append(unfinished, unreported...) {
		r.log.Info("resuming job from the journal", "job", j.ID, "action", j.Action, "state", j.State)
		r.Submit(j.ID)
	}
	return nil
}

// Run processes queued jobs until ctx is done; the job in progress when ctx
// ends is finished or abandoned according to its own context.
func (r *Runner) Run(ctx context.Context) {
	for {
		id, ok := r.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
				continue
			}
		}
		r.process(ctx, id)
		r.mu.Lock()
		delete(r.queued, id)
		r.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

func (r *Runner) next() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) == 0 {
		return "", false
	}
	id := r.order[0]
	r.order = r.order[1:]
	return id, true
}

func (r *Runner) changed() {
	if r.opts.Changed != nil {
		r.opts.Changed()
	}
}

// process runs one job end to end. Errors talking to the control plane are
// logged: the job id comes back with the next heartbeat and is tried again.
func (r *Runner) process(ctx context.Context, id string) {
	log := r.log.With("job", id)
	var job Job
	if err := r.opts.Box.Get(ctx, id, &job); err != nil {
		if nuvla.IsNotFound(err) {
			log.Warn("job no longer exists")
			r.forget(id)
			return
		}
		log.Warn("cannot read job; it will be retried", "err", err)
		return
	}
	log = log.With("action", job.Action)
	rec, known, err := r.opts.Store.BeginJob(job.ID, job.Action, job.TargetResource.Href)
	if err != nil {
		log.Error("cannot journal job; not running it", "err", err)
		return
	}
	if job.Final() {
		if known && !rec.Reported && rec.Finished() {
			_ = r.opts.Store.MarkJobReported(job.ID)
		} else if !rec.Finished() {
			// Finished elsewhere (canceled by a user, say): close the record.
			_ = r.opts.Store.FinishJob(job.ID, store.JobFailed, "job ended on the control plane as "+job.State, 1)
			_ = r.opts.Store.MarkJobReported(job.ID)
		}
		r.changed()
		return
	}
	if known && rec.Finished() {
		log.Info("reporting the result of a job that already ran")
		r.report(ctx, log, rec)
		return
	}
	if !known && job.State == StateRunning {
		r.finish(ctx, log, job.ID, "", fmt.Errorf("this job was picked up but is already RUNNING, and berthd has no record of it (another agent on this box, or a lost state file); it was not run again"))
		return
	}
	if known && rec.State == store.JobRunning {
		log.Info("job was interrupted by a restart; running it again", "last-step", lastStep(rec))
	}
	r.changed()
	jc := &jobContext{r: r, job: &job, log: log}
	msg, err := r.execute(ctx, jc)
	r.finish(ctx, log, job.ID, msg, err)
	if err == nil && jc.after != nil {
		// The result is journaled (and reported unless the network
		// failed, in which case it is reported after the restart): what
		// happens now cannot make the job run twice.
		jc.after(ctx)
	}
}

// execute validates and runs the job, returning its status message or
// the failure.
func (r *Runner) execute(ctx context.Context, jc *jobContext) (msg string, err error) {
	job, log := jc.job, jc.log
	if job.Version != SupportedVersion {
		return "", fmt.Errorf("job version %d is not supported by berthd (it runs version %d jobs)", job.Version, SupportedVersion)
	}
	h := r.handlers[job.Action]
	if h == nil {
		return "", fmt.Errorf("not supported by berthd: %s", job.Action)
	}
	if err := r.opts.Store.JobStep(job.ID, "running", ""); err != nil {
		return "", fmt.Errorf("journal job: %w", err)
	}
	if err := r.opts.Box.Edit(ctx, job.ID, map[string]any{"state": StateRunning}, nil); err != nil {
		return "", fmt.Errorf("mark job running: %w", err)
	}
	jctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			log.Error("job handler panicked", "panic", p)
			err = fmt.Errorf("internal error while running %s: %v", job.Action, p)
		}
	}()
	return h(jctx, jc)
}

// finish records the outcome and reports it.
func (r *Runner) finish(ctx context.Context, log *slog.Logger, id, msg string, err error) {
	state, rc := store.JobSucceeded, 0
	if err != nil {
		state, rc, msg = store.JobFailed, 1, err.Error()
		log.Warn("job failed", "err", err)
	} else {
		log.Info("job succeeded")
	}
	if ferr := r.opts.Store.FinishJob(id, state, msg, rc); ferr != nil {
		log.Error("cannot journal job result", "err", ferr)
	}
	rec, _, _ := r.opts.Store.Job(id)
	r.report(ctx, log, rec)
}

// report sends a finished job's result; a 409 means the server already has
// a final state, which counts as acknowledged.
func (r *Runner) report(ctx context.Context, log *slog.Logger, rec store.JobRecord) {
	defer r.changed()
	state := StateSuccess
	if rec.State == store.JobFailed {
		state = StateFailed
	}
	body := map[string]any{"state": state, "return-code": rec.ReturnCode}
	if rec.Message != "" {
		body["status-message"] = rec.Message
	}
	err := r.opts.Box.Edit(ctx, rec.ID, body, nil)
	if err != nil && !nuvla.IsConflict(err) && !nuvla.IsNotFound(err) {
		log.Warn("cannot report job result; it will be reported again", "err", err)
		return
	}
	if err := r.opts.Store.MarkJobReported(rec.ID); err != nil {
		log.Error("cannot journal that the job was reported", "err", err)
	}
	if err := r.opts.Store.PruneJobs(journalKeep); err != nil {
		log.Warn("cannot prune the jobs journal", "err", err)
	}
}

// deploymentSession returns a logged-in session for a deployment's api key, reusing
// the one from an earlier job when there is one.
func (r *Runner) deploymentSession(ctx context.Context, key, secret string) (*nuvla.Client, error) {
	r.sessMu.Lock()
	c, ok := r.sessions[key]
	r.sessMu.Unlock()
	if ok {
		return c, nil
	}
	c, err := r.opts.Session(ctx, key, secret)
	if err != nil {
		return nil, err
	}
	r.sessMu.Lock()
	r.sessions[key] = c
	r.sessMu.Unlock()
	return c, nil
}

// dropSession forgets a deployment's session (its key is being deleted).
func (r *Runner) dropSession(key string) {
	r.sessMu.Lock()
	c, ok := r.sessions[key]
	delete(r.sessions, key)
	r.sessMu.Unlock()
	if ok {
		c.CloseIdle()
	}
}

func (r *Runner) forget(id string) {
	rec, ok, _ := r.opts.Store.Job(id)
	if ok && !rec.Finished() {
		_ = r.opts.Store.FinishJob(id, store.JobFailed, "job no longer exists on the control plane", 1)
	}
	if ok {
		_ = r.opts.Store.MarkJobReported(id)
	}
}

func lastStep(rec store.JobRecord) string {
	if len(rec.Steps) == 0 {
		return ""
	}
	return rec.Steps[len(rec.Steps)-1].Name
}

// jobContext is what a handler uses to report progress and journal steps.
type jobContext struct {
	r   *Runner
	job *Job
	log *slog.Logger
	// after, when set by a successful handler, runs once the job's result
	// is journaled and reported (a reboot, say).
	after func(ctx context.Context)
}

// step journals a step before its side effect happens.
func (jc *jobContext) step(name, detail string) error {
	if err := jc.r.opts.Store.JobStep(jc.job.ID, name, detail); err != nil {
		return fmt.Errorf("journal step %s: %w", name, err)
	}
	return nil
}

// progress reports progress; failures to report are not job failures.
func (jc *jobContext) progress(ctx context.Context, p int) {
	if err := jc.r.opts.Box.Edit(ctx, jc.job.ID, map[string]any{"progress": p}, nil); err != nil {
		jc.log.Warn("cannot report job progress", "progress", p, "err", err)
	}
}

// message sets the job's status message while it runs.
func (jc *jobContext) message(ctx context.Context, msg string) {
	if err := jc.r.opts.Box.Edit(ctx, jc.job.ID, map[string]any{"status-message": msg}, nil); err != nil {
		jc.log.Warn("cannot report job status message", "err", err)
	}
}

// decodePayload decodes the job's payload (a JSON document carried as a
// string) strictly into v: unknown keys and wrong types are errors.
func decodePayload(raw string, v any) error {
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("malformed job payload: %s must be a %s, not a JSON %s", te.Field, te.Type, te.Value)
		}
		return fmt.Errorf("malformed job payload %q: %w", truncate(raw, 200), err)
	}
	if dec.More() {
		return fmt.Errorf("malformed job payload %q: trailing data", truncate(raw, 200))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
