// Package agent is berthd's link to its control plane and the source of
// truth about its own state.
//
// With no control plane configured the agent is standalone and only
// answers questions about the apps. With one, it runs the Nuvla edge
// protocol: it activates the box (once, storing the key before anything
// else), logs in, commissions the box, then sends heartbeats and telemetry
// at the intervals the nuvlabox document sets, and hands the job ids in the
// answers to the job runner. When the control plane cannot be reached it
// backs off with jitter and keeps the apps running; a decommissioned box
// stops talking and says so.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/jobs"
	"github.com/berth-edge/berth/daemon/internal/nuvla"
	"github.com/berth-edge/berth/daemon/internal/reconcile"
	"github.com/berth-edge/berth/daemon/internal/store"
	"github.com/berth-edge/berth/daemon/internal/telemetry"
)

// States of the agent, as shown by `berth status` and sent to systemd.
const (
	StateStandalone     = "standalone"
	StateStarting       = "starting"
	StateActivating     = "activating"
	StateConnecting     = "connecting"
	StateCommissioning  = "commissioning"
	StateOnline         = "online"
	StateOffline        = "offline"
	StateDecommissioned = "decommissioned"
	StateError          = "error"
)

// Options wire an Agent.
type Options struct {
	Config config.Nuvla
	Store  *store.Store
	Recon  *reconcile.Reconciler
	// Recorder samples the telemetry the agent sends (nil: none is sent).
	Recorder  *telemetry.Recorder
	Logs      func(ctx context.Context, containerID string, tail int) (string, error)
	Logger    *slog.Logger
	Version   string
	UserAgent string
	// Notify receives a one-line status on every state change (systemd STATUS=).
	Notify func(status string)
	// JobsChanged is called when a job changes state.
	JobsChanged func()
	// ControlPlaneError, if set, is called with a kind (timeout, network,
	// http_5xx, http_4xx, forbidden, conflict, patch_refused, ...) on every
	// failed exchange with the control plane.
	ControlPlaneError func(kind string)
	// TelemetrySent, if set, is told the size of every status update
	// acknowledged, by form (patch or put).
	TelemetrySent func(form string, n int)
	// MinInterval bounds how often heartbeats and telemetry may be sent
	// (default 1s; Nuvla itself enforces 10s and 60s).
	MinInterval time.Duration
	// Host wires the jobs that act on the box itself.
	Host jobs.HostOptions
}

// Agent runs the control-plane protocol.
type Agent struct {
	opts Options
	log  *slog.Logger

	// box and runner are set by New and never change.
	box     *nuvla.Client
	runner  *jobs.Runner
	initErr error

	mu     sync.Mutex
	state  string
	msg    string
	since  time.Time
	link   client.Nuvla
	boxDoc nuvlabox
	tel    statusSender
	// retryable is set when activation failed before any key was stored:
	// Configure may then be called again.
	retryable bool
	// reconf wakes Run after Configure.
	reconf chan struct{}
}

// nuvlabox is the part of the nuvlabox document the agent uses.
type nuvlabox struct {
	ID                string `json:"id"`
	State             string `json:"state"`
	Updated           string `json:"updated"`
	NuvlaboxStatus    string `json:"nuvlabox-status"`
	RefreshInterval   int    `json:"refresh-interval"`
	HeartbeatInterval int    `json:"heartbeat-interval"`
}

// New returns an Agent.
func New(opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinInterval == 0 {
		opts.MinInterval = time.Second
	}
	a := &Agent{opts: opts, log: opts.Logger.With("component", "agent"), since: time.Now(),
		reconf: make(chan struct{}, 1)}
	a.state = StateStarting
	if opts.Config.Endpoint == "" {
		a.state = StateStandalone
		a.msg = "no control plane configured; apps are managed locally"
		return a
	}
	a.setup(opts.Config)
	return a
}

// setup builds the control-plane client and the job runner for cfg. The
// caller holds a.mu or owns a exclusively.
func (a *Agent) setup(cfg config.Nuvla) {
	a.opts.Config = cfg
	a.link = client.Nuvla{Endpoint: cfg.Endpoint, NuvlaboxID: cfg.NuvlaboxID}
	a.runner = nil
	a.box, a.initErr = nuvla.New(nuvla.Options{Endpoint: cfg.Endpoint, Insecure: cfg.Insecure, Logger: a.log, UserAgent: a.opts.UserAgent})
	if a.initErr == nil {
		a.runner = jobs.New(jobs.Options{
			Box:     a.box,
			Session: a.deploymentSession,
			Store:   a.opts.Store,
			Recon:   a.opts.Recon,
			Logs:    a.opts.Logs,
			Logger:  a.opts.Logger.With("component", "jobs"),
			Changed: a.opts.JobsChanged,
			Host:    a.opts.Host,
		})
	}
}

// ErrAlreadyLinked is returned by Configure when the box already talks to
// a control plane (or has a key for one).
var ErrAlreadyLinked = errors.New("this box is already linked to a control plane")

// Configure links a standalone box to a control plane: Run activates it
// with the box id, then commissions it. It is also accepted after an
// activation that failed (a wrong box id, say), so the person at the box
// can correct it without restarting berthd.
func (a *Agent) Configure(cfg config.Nuvla) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state != StateStandalone && !a.retryable {
		return fmt.Errorf("%w (%s, state %s)", ErrAlreadyLinked, a.opts.Config.Endpoint, a.state)
	}
	a.retryable = false
	a.setup(cfg)
	a.log.Info("control plane configured", "endpoint", cfg.Endpoint, "nuvlabox", cfg.NuvlaboxID)
	select {
	case a.reconf <- struct{}{}:
	default:
	}
	return nil
}

// State returns the current state and its message.
func (a *Agent) State() (string, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state, a.msg
}

// Link returns the control-plane link, or nil when standalone.
func (a *Agent) Link() *client.Nuvla {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.opts.Config.Endpoint == "" {
		return nil
	}
	l := a.link
	return &l
}

// Since returns when the current state began.
func (a *Agent) Since() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.since
}

func (a *Agent) setState(state, msg string) {
	a.mu.Lock()
	changed := a.state != state || a.msg != msg
	if a.state != state {
		a.since = time.Now()
	}
	old := a.state
	a.state, a.msg = state, msg
	a.mu.Unlock()
	if !changed {
		return
	}
	if old != state {
		a.log.Info("state changed", "from", old, "to", state, "detail", msg)
	}
	if a.opts.Notify != nil {
		line := state
		if msg != "" {
			line += ": " + msg
		}
		a.opts.Notify(line)
	}
}

func (a *Agent) updateLink(fn func(l *client.Nuvla)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(&a.link)
}

// Run runs the protocol until ctx is done. It returns nil on shutdown; the
// agent never ends berthd by itself, even when the box is decommissioned.
// A standalone agent waits for Configure.
func (a *Agent) Run(ctx context.Context) error {
	for {
		a.mu.Lock()
		standalone := a.opts.Config.Endpoint == ""
		initErr := a.initErr
		a.mu.Unlock()
		switch {
		case standalone:
			a.setState(StateStandalone, "no control plane configured; apps are managed locally")
		case initErr != nil:
			a.setState(StateError, initErr.Error())
			a.allowRetry()
		default:
			if a.runProtocol(ctx) {
				a.allowRetry()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.reconf:
		}
	}
}

// runProtocol talks to the configured control plane until ctx ends. When
// activation fails before a key was stored it returns early with retry
// set, its goroutines stopped, so that Configure may try again; any other
// terminal failure (a decommissioned box, say) keeps the job runner alive
// until ctx ends.
func (a *Agent) runProtocol(ctx context.Context) (retry bool) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runner := a.Runner()
	wg.Go(func() { runner.Run(ctx) })
	if err := runner.Recover(); err != nil {
		a.log.Error("cannot resume jobs from the journal", "err", err)
	}

	if err := a.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return false
		}
		a.log.Error("control plane link stopped", "err", err)
		if id, ok, _ := a.opts.Store.Identity(); !ok || id.APIKey == "" {
			return true
		}
		<-ctx.Done()
		return false
	}
	a.probeFeatures(ctx)
	a.loop(ctx)
	return false
}

// allowRetry lets Configure be called again.
func (a *Agent) allowRetry() {
	a.mu.Lock()
	a.retryable = true
	a.mu.Unlock()
}

// deploymentSession logs in a second client with a deployment's api key.
func (a *Agent) deploymentSession(ctx context.Context, key, secret string) (*nuvla.Client, error) {
	c, err := nuvla.New(nuvla.Options{Endpoint: a.opts.Config.Endpoint, Insecure: a.opts.Config.Insecure, Logger: a.log, UserAgent: a.opts.UserAgent})
	if err != nil {
		return nil, err
	}
	c.SetCredentials(key, secret)
	if err := c.Login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// terminalError ends the protocol: retrying cannot help.
type terminalError struct {
	state, msg string
}

func (e *terminalError) Error() string { return e.msg }

// connect brings the box to COMMISSIONED: credentials, login, commission.
// Transient failures are retried with backoff; terminal ones set the state
// and return.
func (a *Agent) connect(ctx context.Context) error {
	b := newBackoff(time.Second, 5*time.Minute)
	for {
		err := a.connectOnce(ctx)
		if err == nil {
			return nil
		}
		var te *terminalError
		if errors.As(err, &te) {
			a.setState(te.state, te.msg)
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := b.next()
		a.offline(err, wait)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

func (a *Agent) offline(err error, wait time.Duration) {
	now := time.Now()
	a.cpError(errorKind(err))
	a.updateLink(func(l *client.Nuvla) {
		l.Online = false
		l.LastError = err.Error()
		if l.OfflineSince.IsZero() {
			l.OfflineSince = now
		}
	})
	a.setState(StateOffline, fmt.Sprintf("cannot reach the control plane (retrying in %s): %v", wait.Round(time.Second), err))
}

func (a *Agent) connectOnce(ctx context.Context) error {
	id, err := a.credentials(ctx)
	if err != nil {
		return err
	}
	a.box.SetCredentials(id.APIKey, id.APISecret)
	a.setState(StateConnecting, "logging in to "+a.opts.Config.Endpoint)
	if err := a.box.Login(ctx); err != nil {
		if nuvla.IsForbidden(err) {
			return &terminalError{StateDecommissioned, fmt.Sprintf("the control plane refused this box's api key (%s): the box was decommissioned or its key revoked in Nuvla; berthd keeps running the local apps but no longer talks to the control plane", id.APIKey)}
		}
		return err
	}
	doc, err := a.readBox(ctx)
	if err != nil {
		return err
	}
	switch doc.State {
	case "DECOMMISSIONING", "DECOMMISSIONED":
		return &terminalError{StateDecommissioned, fmt.Sprintf("%s is %s in Nuvla; berthd keeps running the local apps but no longer talks to the control plane", doc.ID, doc.State)}
	case "NEW":
		return &terminalError{StateError, fmt.Sprintf("%s is still NEW in Nuvla although berthd holds a key for it: delete %s to activate again", doc.ID, a.opts.Store.Path())}
	case "SUSPENDED":
		return fmt.Errorf("%s is SUSPENDED in Nuvla", doc.ID)
	}
	a.setState(StateCommissioning, "commissioning "+doc.ID)
	if err := a.commission(ctx, doc.ID); err != nil {
		return err
	}
	id.State = "COMMISSIONED"
	id.StatusID = doc.NuvlaboxStatus
	if err := a.opts.Store.SaveIdentity(id); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	return nil
}

// credentials returns the box's api key: stored, pre-provisioned, or from a
// fresh activation, which is persisted before anything else happens.
func (a *Agent) credentials(ctx context.Context) (store.Identity, error) {
	cfg := a.opts.Config
	id, ok, err := a.opts.Store.Identity()
	if err != nil {
		return id, &terminalError{StateError, "cannot read the box identity from the state file: " + err.Error()}
	}
	if ok && id.NuvlaboxID != "" && cfg.NuvlaboxID != "" && id.NuvlaboxID != cfg.NuvlaboxID {
		a.log.Warn("configured box differs from the stored one; using the configured box", "stored", id.NuvlaboxID, "configured", cfg.NuvlaboxID)
		ok = false
	}
	if cfg.APIKey != "" && (!ok || id.APIKey != cfg.APIKey) {
		id = store.Identity{NuvlaboxID: cfg.NuvlaboxID, Endpoint: cfg.Endpoint, Insecure: cfg.Insecure, APIKey: cfg.APIKey, APISecret: cfg.APISecret}
		if err := a.opts.Store.SaveIdentity(id); err != nil {
			return id, fmt.Errorf("save identity: %w", err)
		}
		ok = true
	}
	if ok && id.APIKey != "" {
		if id.NuvlaboxID == "" {
			id.NuvlaboxID = cfg.NuvlaboxID
		}
		a.updateLink(func(l *client.Nuvla) { l.NuvlaboxID = id.NuvlaboxID })
		return id, nil
	}
	a.setState(StateActivating, "activating "+cfg.NuvlaboxID)
	key, secret, err := a.box.Activate(ctx, cfg.NuvlaboxID)
	if err != nil {
		switch nuvla.StatusCode(err) {
		case 409:
			return id, &terminalError{StateError, fmt.Sprintf("%s is already activated and berthd has no key for it: create an api key for the box in Nuvla and give it to berthd (NUVLAEDGE_API_KEY and NUVLAEDGE_API_SECRET)", cfg.NuvlaboxID)}
		case 404:
			return id, &terminalError{StateError, fmt.Sprintf("%s does not exist on %s: check nuvla.nuvlabox-id", cfg.NuvlaboxID, cfg.Endpoint)}
		}
		return id, err
	}
	id = store.Identity{NuvlaboxID: cfg.NuvlaboxID, Endpoint: cfg.Endpoint, Insecure: cfg.Insecure, APIKey: key, APISecret: secret, State: "ACTIVATED", Activated: time.Now().UTC()}
	if err := a.opts.Store.SaveIdentity(id); err != nil {
		// Activation cannot be repeated; without the key the box is lost.
		return id, &terminalError{StateError, fmt.Sprintf("activated %s but could not save its key (%v): create a new api key for the box in Nuvla", cfg.NuvlaboxID, err)}
	}
	a.log.Info("box activated", "nuvlabox", cfg.NuvlaboxID, "api-key", key)
	return id, nil
}

func (a *Agent) readBox(ctx context.Context) (nuvlabox, error) {
	var doc nuvlabox
	id := a.Link().NuvlaboxID
	if err := a.box.Get(ctx, id, &doc); err != nil {
		return doc, fmt.Errorf("read %s: %w", id, err)
	}
	a.mu.Lock()
	a.boxDoc = doc
	a.link.BoxState = doc.State
	a.link.HeartbeatInterval = doc.HeartbeatInterval
	a.link.RefreshInterval = doc.RefreshInterval
	a.mu.Unlock()
	return doc, nil
}

// commission declares the box's capabilities. With no Docker TLS API the
// endpoint is "local" and the credentials the literal "null", as NuvlaEdge
// sends them; without them Nuvla cannot target the box.
func (a *Agent) commission(ctx context.Context, boxID string) error {
	body := map[string]any{
		"capabilities":      []string{"NUVLA_HEARTBEAT", "NUVLA_JOB_PULL"},
		"swarm-endpoint":    "local",
		"swarm-client-ca":   "null",
		"swarm-client-cert": "null",
		"swarm-client-key":  "null",
	}
	for k, v := range a.swarmCommission(ctx) {
		body[k] = v
	}
	if err := a.box.Operation(ctx, boxID, "commission", body, nil); err != nil {
		return fmt.Errorf("commission %s: %w", boxID, err)
	}
	return nil
}

// exchangeTimeout bounds one heartbeat or telemetry exchange: twice the
// heartbeat interval, between 3 s and 30 s, so that a request swallowed by
// the network does not hold the loop much longer than an interval.
func (a *Agent) exchangeTimeout() time.Duration {
	heartbeat, _ := a.intervals()
	a.mu.Lock()
	online := a.link.Online
	a.mu.Unlock()
	if !online {
		// Probing an unreachable control plane: a probe that hangs gives
		// up after half an interval and the next one follows half an
		// interval later, so the box is back within one interval of the
		// control plane's return.
		return max(heartbeat/2, 500*time.Millisecond)
	}
	return min(max(2*heartbeat, 3*time.Second), 30*time.Second)
}
func (a *Agent) intervals() (heartbeat, refresh time.Duration) {
	a.mu.Lock()
	doc := a.boxDoc
	a.mu.Unlock()
	heartbeat = time.Duration(doc.HeartbeatInterval) * time.Second
	refresh = time.Duration(doc.RefreshInterval) * time.Second
	if heartbeat <= 0 {
		heartbeat = 20 * time.Second
	}
	if refresh <= 0 {
		refresh = 60 * time.Second
	}
	return max(heartbeat, a.opts.MinInterval), max(refresh, a.opts.MinInterval)
}

// loop sends heartbeats and telemetry until ctx is done. A failure moves
// the box offline; the next attempt comes after a jittered backoff, never
// later than the regular interval.
func (a *Agent) loop(ctx context.Context) {
	hb, tel := time.Now(), time.Now()
	b := newBackoff(time.Second, 2*time.Minute)
	for {
		now := time.Now()
		var err error
		if !now.Before(tel) {
			err = a.telemetry(ctx)
			if err == nil {
				_, refresh := a.intervals()
				tel = now.Add(refresh)
			}
		}
		if err == nil && !now.Before(hb) {
			err = a.heartbeat(ctx)
			if err == nil {
				heartbeat, _ := a.intervals()
				hb = now.Add(heartbeat)
			}
		}
		if ctx.Err() != nil {
			return
		}
		var te *terminalError
		if errors.As(err, &te) {
			a.setState(te.state, te.msg)
			<-ctx.Done()
			return
		}
		wake := hb
		if tel.Before(wake) {
			wake = tel
		}
		if err != nil {
			// Back off, but never beyond half the heartbeat interval: with
			// the probe timeout (exchangeTimeout), once the control plane
			// is back the box shows up within an interval.
			heartbeat, _ := a.intervals()
			retry := min(b.next(), max(heartbeat/2, 500*time.Millisecond))
			a.offline(err, retry)
			wake = time.Now().Add(retry)
			if wake.Before(hb) {
				hb = wake
			}
			if wake.Before(tel) {
				tel = wake
			}
		} else {
			b.reset()
		}
		if !sleep(ctx, time.Until(wake)) {
			return
		}
	}
}

func (a *Agent) heartbeat(ctx context.Context) error {
	boxID := a.Link().NuvlaboxID
	cctx, cancel := context.WithTimeout(ctx, a.exchangeTimeout())
	defer cancel()
	res, err := a.box.Heartbeat(cctx, boxID)
	if err != nil {
		return a.classify(ctx, err)
	}
	a.markOnline(func(l *client.Nuvla) { l.LastHeartbeat = nowFunc() })
	a.runner.Submit(res.Jobs...)
	a.mu.Lock()
	changed := res.DocLastUpdated != "" && res.DocLastUpdated != a.boxDoc.Updated
	a.mu.Unlock()
	if changed {
		if _, err := a.readBox(cctx); err != nil {
			a.log.Warn("cannot re-read the nuvlabox after it changed", "err", err)
		} else {
			hb, tel := a.intervals()
			a.log.Info("nuvlabox changed; intervals now", "heartbeat", hb, "telemetry", tel)
		}
	}
	return nil
}

func (a *Agent) markOnline(fn func(l *client.Nuvla)) {
	a.updateLink(func(l *client.Nuvla) {
		fn(l)
		l.Online = true
		l.OfflineSince = time.Time{}
		l.LastError = ""
	})
	a.setState(StateOnline, "connected to "+a.opts.Config.Endpoint)
}

// classify turns a refused request into a terminal error when the box is
// gone, and leaves other errors for the backoff.
func (a *Agent) classify(ctx context.Context, err error) error {
	if !nuvla.IsForbidden(err) && nuvla.StatusCode(err) != 409 {
		return err
	}
	doc, rerr := a.readBox(ctx)
	if rerr != nil {
		if nuvla.IsForbidden(rerr) {
			return &terminalError{StateDecommissioned, "the control plane no longer accepts this box (its key was revoked or the box decommissioned); berthd keeps running the local apps"}
		}
		return err
	}
	switch doc.State {
	case "DECOMMISSIONING", "DECOMMISSIONED":
		return &terminalError{StateDecommissioned, fmt.Sprintf("%s was %s in Nuvla; berthd keeps running the local apps but no longer talks to the control plane", doc.ID, doc.State)}
	case "ACTIVATED":
		if cerr := a.commission(ctx, doc.ID); cerr != nil {
			return cerr
		}
	}
	return err
}

// Runner returns the job runner (nil when standalone).
func (a *Agent) Runner() *jobs.Runner {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runner
}

// backoff is exponential with full jitter.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	// Jitter between half and the whole step, so a fleet does not retry in step.
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

// nowFunc is the agent's clock.
var nowFunc = time.Now

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
