package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/berth-edge/berth/daemon/internal/profiles"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/mem"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/caller"
	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/events"
	"github.com/berth-edge/berth/daemon/internal/reconcile"
	"github.com/berth-edge/berth/daemon/internal/store"
)

// Profiles resolves admin profiles (implemented by package profiles).
type Profiles interface {
	// Profile returns the named profile; an unknown name is an error
	// wrapping fs.ErrNotExist.
	Profile(name string) (client.Profile, error)
}

// Target is where berthd's proxy sends a web session's traffic.
type Target struct {
	ID, Type, Owner, Token string
	// Addr is 127.0.0.1:port.
	Addr string
	// StripPrefix: the session expects requests at / (contributed), not
	// under /session/<type>/<id>/ (notebook, carta).
	StripPrefix bool
}

// Error is a failure with the HTTP status the API answers it with.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Options configure a Manager.
type Options struct {
	Store  *store.Store
	Recon  *reconcile.Reconciler
	Engine *engine.Engine
	// Hub receives session and pull events (nil: none are published).
	Hub    *events.Hub
	Logger *slog.Logger
	Config config.Sessions
	// StateDir holds sessions/<id>/ (a desktop-app's Xauthority).
	StateDir string
	// WebBase returns the web listener's base URL ("http://127.0.0.1:8484"),
	// or "" when it is off: connect URLs are then paths.
	WebBase func() string
	// Profiles resolves profile=NAME launches; nil: no profiles.
	Profiles Profiles
	// PullAuth returns the credentials to pull an image with (the
	// catalog's: the credential its registry names); nil: every stored
	// credential, by registry host.
	PullAuth func(image string) (engine.Auth, error)
	// Hostname is skaha_hostname (default: os.Hostname).
	Hostname string
	// HostCPUs and HostMemGB size the context (0: this host's).
	HostCPUs, HostMemGB int
	// CheckInterval is how often expiry and idleness are checked (default 30s).
	CheckInterval time.Duration
	// ReadyTimeout bounds the wait for a web session to answer HTTP
	// before it counts as Running anyway (default 2 minutes).
	ReadyTimeout time.Duration
	// X11Dir is the host's X11 socket directory (default /tmp/.X11-unix).
	X11Dir string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Manager launches and tracks sessions. Create it with New, run its loop
// with Run (which, when it returns, has stopped every launch in flight).
type Manager struct {
	opts  Options
	log   *slog.Logger
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	sctx  client.Context
	now   func() time.Time
	recMu sync.Mutex // serialises read-modify-write of session records

	mu       sync.Mutex
	closed   bool
	launches map[string]*launch
	activity map[string]time.Time
	statuses map[string]string
}

type launch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Manager.
func New(opts Options) (*Manager, error) {
	if opts.Store == nil || opts.Recon == nil || opts.Engine == nil {
		return nil, errors.New("sessions: store, reconciler and engine are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = 30 * time.Second
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.Config.MaxInteractive <= 0 {
		opts.Config.MaxInteractive = 5
	}
	if opts.Config.Expiry.Duration <= 0 {
		opts.Config.Expiry.Duration = 96 * time.Hour
	}
	if opts.Config.HeadlessExpiry.Duration <= 0 {
		opts.Config.HeadlessExpiry.Duration = 14 * 24 * time.Hour
	}
	cpus, memGB := opts.HostCPUs, opts.HostMemGB
	if cpus <= 0 {
		cpus = runtime.NumCPU()
	}
	if memGB <= 0 {
		if vm, err := mem.VirtualMemory(); err == nil {
			memGB = int(vm.Total >> 30)
		}
	}
	m := &Manager{
		opts: opts, log: opts.Logger.With("component", "sessions"), now: opts.Now,
		sctx:     NewContext(cpus, memGB, opts.Config.MaxCores, opts.Config.MaxMemoryGB, opts.Config.MaxInteractive),
		launches: map[string]*launch{}, activity: map[string]time.Time{}, statuses: map[string]string{},
	}
	m.ctx, m.stop = context.WithCancel(context.Background())
	return m, nil
}

// Context is the resources a session may ask for.
func (m *Manager) Context() client.Context { return m.sctx }

// Close stops every launch in flight and waits for them. Run calls it
// when its context ends; calling it again is harmless.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.stop()
	m.wg.Wait()
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newID returns an 8-character [a-z0-9] id, as skaha's.
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// newToken returns 32 random hex characters.
func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// HomeVolumeName is the name of uid's home volume.
func HomeVolumeName(uid int) string { return "berth-home-" + strconv.Itoa(uid) }

// launchPlan is a validated launch, resolved.
type launchPlan struct {
	req        LaunchRequest
	command    []string
	env        map[string]string
	storages   []client.ProfileStorage
	retry      int
	credential string
}

// Launch validates req, records the session as Pending and starts it in
// the background (pull, home, create, start); it returns the session id.
func (m *Manager) Launch(ctx context.Context, c caller.Caller, req LaunchRequest) (string, error) {
	if c.UID == 0 {
		return "", errorf(http.StatusForbidden, "sessions never run as root: launch it as your own user (without sudo)")
	}
	plan, err := m.resolve(ctx, req)
	if err != nil {
		return "", err
	}
	req = plan.req
	all, err := m.opts.Engine.ListAll(ctx)
	if err != nil {
		return "", fmt.Errorf("list containers: %w", err)
	}
	byApp := containersByApp(all)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", errorf(http.StatusServiceUnavailable, "berthd is shutting down")
	}
	if IsInteractive(req.Type) {
		recs, err := m.records()
		if err != nil {
			return "", err
		}
		n := 0
		for _, r := range recs {
			if r.Session.UID != c.UID || !IsInteractive(r.Session.Type) {
				continue
			}
			if st, _, _ := Status(r.Session, byApp[r.App.ID]); st == client.StatusPending || st == client.StatusRunning {
				n++
			}
		}
		if limit := m.opts.Config.MaxInteractive; n >= limit {
			return "", errorf(http.StatusBadRequest, "User %s has reached the maximum of %d active sessions.", c.Name, limit)
		}
	}
	id := newID()
	for {
		if _, ok, err := m.opts.Store.App(id); err != nil {
			return "", err
		} else if !ok {
			break
		}
		id = newID()
	}
	now := m.now().UTC()
	expiry := m.opts.Config.Expiry.Duration
	if req.Type == client.TypeHeadless {
		expiry = m.opts.Config.HeadlessExpiry.Duration
	}
	meta := &store.SessionMeta{
		Type: req.Type, Name: req.Name, Image: req.Image, UserName: c.Name, UID: c.UID, GID: c.GID,
		Groups: slices.Clone(c.Groups), Token: newToken(), Cores: req.Cores, RAMGB: req.RAM,
		Fixed: req.Cores > 0 || req.RAM > 0, Profile: req.Profile, Display: req.Display,
		Started: now, Expiry: now.Add(expiry), Phase: store.PhasePending, Message: "pulling image " + req.Image,
	}
	rec := store.AppRecord{
		App:     apps.App{ID: id, Kind: apps.KindSession, Name: req.Name, Owner: strconv.Itoa(c.UID)},
		Desired: store.DesiredRunning, Source: store.SourceLocal, Session: meta,
	}
	if err := m.opts.Store.PutApp(rec); err != nil {
		return "", fmt.Errorf("record session: %w", err)
	}
	m.log.Info("launching session", "id", id, "session", *meta)
	m.publish(id, meta)
	lctx, cancel := context.WithCancel(m.ctx)
	l := &launch{cancel: cancel, done: make(chan struct{})}
	m.launches[id] = l
	m.wg.Go(func() {
		defer close(l.done)
		defer cancel()
		m.run(lctx, id, c, plan)
		m.mu.Lock()
		delete(m.launches, id)
		m.mu.Unlock()
	})
	return id, nil
}

// resolve validates a request and merges its profile in.
func (m *Manager) resolve(ctx context.Context, req LaunchRequest) (launchPlan, error) {
	p := launchPlan{req: req}
	if req.Profile != "" {
		if m.opts.Profiles == nil {
			return p, errorf(http.StatusNotFound, "no profile %q: no profiles are configured", req.Profile)
		}
		prof, err := m.opts.Profiles.Profile(req.Profile)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return p, errorf(http.StatusNotFound, "no profile %q", req.Profile)
			}
			return p, errorf(http.StatusBadRequest, "profile %q: %v", req.Profile, err)
		}
		if req.Image != "" && req.Image != prof.Image {
			return p, errorf(http.StatusBadRequest, "profile %q runs image %s; do not give another image", req.Profile, prof.Image)
		}
		p.req.Image = prof.Image
		if p.req.Type == "" {
			p.req.Type = prof.Type
		}
		if p.req.Cores == 0 {
			p.req.Cores = prof.Cores
		}
		if p.req.RAM == 0 {
			p.req.RAM = prof.RAMGB
		}
		if p.req.Name == "" {
			p.req.Name = prof.Name
		}
		p.command = prof.Command
		p.env = prof.Env
		p.retry = prof.RetryLimit
		p.credential = prof.PullCredential
		storages, err := profiles.CheckStorages(ctx, prof, m.opts.Engine.VolumeExists)
		if errors.Is(err, profiles.ErrMissingStorage) {
			return p, errorf(http.StatusBadRequest, "%s", err.Error())
		}
		if err != nil {
			return p, err
		}
		p.storages = storages
	}
	r := &p.req
	if r.Type == "" {
		r.Type = client.TypeHeadless
	}
	if !slices.Contains(client.SessionTypes, r.Type) {
		return p, errorf(http.StatusBadRequest, "unknown session type %q (known: %s)", r.Type, strings.Join(client.SessionTypes, ", "))
	}
	if r.Name == "" {
		return p, errorf(http.StatusBadRequest, "missing session name (parameter name)")
	}
	if !nameRE.MatchString(r.Name) {
		return p, errorf(http.StatusBadRequest, "bad session name %q: use only letters, digits and -", r.Name)
	}
	if r.Image == "" {
		return p, errorf(http.StatusBadRequest, "missing image (parameter image)")
	}
	if r.GPUs != 0 {
		return p, errorf(http.StatusBadRequest, "gpus %d: this box has no GPU support (gpus must be 0)", r.GPUs)
	}
	if r.Cores != 0 && !inOptions(m.sctx.Cores, r.Cores) {
		return p, errorf(http.StatusBadRequest, "cores %d is not one of the options %v (GET context)", r.Cores, m.sctx.Cores.Options)
	}
	if r.RAM != 0 && !inOptions(m.sctx.MemoryGB, r.RAM) {
		return p, errorf(http.StatusBadRequest, "ram %d is not one of the memoryGB options %v (GET context)", r.RAM, m.sctx.MemoryGB.Options)
	}
	if r.Type != client.TypeHeadless && (r.Cmd != "" || r.Args != "" || len(r.Env) > 0) {
		return p, errorf(http.StatusBadRequest, "cmd, args and env are for headless sessions, not %s", r.Type)
	}
	for _, kv := range r.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return p, errorf(http.StatusBadRequest, "env %q is not KEY=VALUE", kv)
		}
	}
	if r.Type == client.TypeDesktopApp {
		if !displayRE.MatchString(r.Display) {
			return p, errorf(http.StatusBadRequest, "a desktop-app session needs the X display to draw on: parameter display (e.g. :0), got %q", r.Display)
		}
		if r.Xauth != "" {
			if b, err := hex.DecodeString(r.Xauth); err != nil || len(b) != 16 {
				return p, errorf(http.StatusBadRequest, "xauth must be the display's MIT-MAGIC-COOKIE-1 as 32 hex digits")
			}
		}
	} else if r.Display != "" || r.Xauth != "" {
		return p, errorf(http.StatusBadRequest, "display and xauth are for desktop-app sessions, not %s", r.Type)
	}
	return p, nil
}

var displayRE = regexp.MustCompile(`^:[0-9]+(\.[0-9]+)?$`)

// run is a launch in the background: pull, inspect, build, home, start.
func (m *Manager) run(ctx context.Context, id string, c caller.Caller, plan launchPlan) {
	req := plan.req
	owner := strconv.Itoa(c.UID)
	err := m.start(ctx, id, c, plan)
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		return // deleted, or berthd stops: Delete or recovery handles it
	}
	m.log.Warn("session launch failed", "id", id, "type", req.Type, "image", req.Image, "err", err)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if rerr := m.opts.Recon.Remove(rctx, id, false, false); rerr != nil {
		m.log.Warn("cannot remove the containers of a failed session", "id", id, "err", rerr)
	}
	_ = m.update(id, func(s *store.SessionMeta) {
		s.Phase, s.Message = store.PhaseFailed, err.Error()
		addEvent(s, m.now(), "Warning", "Failed", err.Error())
	})
	m.publishEvent(owner, client.SessionEvent{ID: id, Status: client.StatusFailed, Message: err.Error()})
}

func (m *Manager) start(ctx context.Context, id string, c caller.Caller, plan launchPlan) error {
	req := plan.req
	owner := strconv.Itoa(c.UID)
	_ = m.update(id, func(s *store.SessionMeta) {
		addEvent(s, m.now(), "Normal", "Pulling", "Pulling image "+req.Image)
	})
	var cred *engine.Credential
	if plan.credential != "" {
		rc, ok, err := m.opts.Store.Registry(plan.credential)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("profile %q: no stored registry credential %q", req.Profile, plan.credential)
		}
		cred = &engine.Credential{Username: rc.Username, Password: rc.Password, ServerAddress: rc.Server}
	}
	var (
		last   time.Time
		latest engine.PullProgress
	)
	auth := m.opts.Recon.Auth()
	if m.opts.PullAuth != nil && cred == nil {
		a, err := m.opts.PullAuth(req.Image)
		if err != nil {
			return err
		}
		auth = a
	}
	pullErr := m.opts.Engine.EnsureImageProgress(ctx, req.Image, cred, auth, func(p engine.PullProgress) {
		latest = p
		if now := time.Now(); now.Sub(last) >= 200*time.Millisecond {
			last = now
			m.publishPull(owner, client.PullProgress{Session: id, Image: req.Image, Current: p.Current, Total: p.Total,
				Layers: p.Layers, LayersDone: p.LayersDone})
		}
	})
	done := client.PullProgress{Session: id, Image: req.Image, Done: true, Current: latest.Current, Total: latest.Total,
		Layers: latest.Layers, LayersDone: latest.LayersDone}
	if pullErr != nil {
		done.Error = pullErr.Error()
	}
	m.publishPull(owner, done)
	if pullErr != nil {
		return pullErr
	}
	info, err := m.opts.Engine.InspectImage(ctx, req.Image)
	if err != nil {
		return err
	}
	home := info.Home
	if home == "" || home == "/" {
		home = "/home/" + c.Name
	}
	spec := Spec{
		ID: id, Req: req, UID: c.UID, GID: c.GID, Groups: c.Groups, UserName: c.Name,
		Hostname: m.opts.Hostname, Home: home, HomeVolume: HomeVolumeName(c.UID),
		Cores: req.Cores, RAMGB: req.RAM, RequestCores: req.Cores,
		Command: plan.command, ProfileEnv: plan.env, Storages: plan.storages, RetryLimit: plan.retry,
		X11Dir: m.opts.X11Dir,
	}
	if spec.RequestCores == 0 {
		spec.RequestCores = m.sctx.Cores.DefaultRequest
	}
	if spec.RAMGB == 0 {
		spec.RAMGB = m.sctx.MemoryGB.DefaultLimit
	}
	rec, ok, err := m.opts.Store.App(id)
	if err != nil || !ok || rec.Session == nil {
		return fmt.Errorf("session %s: record is gone", id)
	}
	spec.Token = rec.Session.Token
	if req.Type == client.TypeDesktopApp && req.Xauth != "" {
		f, err := m.writeXauthority(id, req.Display, req.Xauth, c.UID, c.GID)
		if err != nil {
			return err
		}
		spec.XauthFile = f
	}
	app, err := Build(spec)
	if err != nil {
		return err
	}
	m.recMu.Lock()
	rec, ok, err = m.opts.Store.App(id)
	if err == nil && ok && rec.Session != nil {
		rec.App = *app
		rec.Session.Message = "creating the session"
		addEvent(rec.Session, m.now(), "Normal", "Pulled", "Image "+req.Image+" is present")
		err = m.opts.Store.PutApp(rec)
	} else if err == nil {
		err = fmt.Errorf("session %s: record is gone", id)
	}
	m.recMu.Unlock()
	if err != nil {
		return err
	}
	if _, err := m.opts.Engine.EnsureHome(ctx, engine.HomeVolume{
		Name: spec.HomeVolume, UID: c.UID, GID: c.GID,
		Labels: map[string]string{LabelHome: owner, apps.LabelOwner: owner},
	}, req.Image, home); err != nil {
		return err
	}
	cs, err := m.opts.Recon.Converge(ctx, app, apps.ModeStart, m.opts.Recon.Auth())
	if err != nil {
		return err
	}
	var addr string
	if port, ok := webPorts[req.Type]; ok {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.Target == port && p.HostPort > 0 {
					addr = "127.0.0.1:" + strconv.Itoa(p.HostPort)
				}
			}
		}
		if addr == "" {
			return fmt.Errorf("docker published no host port for port %d", port)
		}
	}
	phase := store.PhaseStarted
	if addr != "" {
		phase = store.PhaseStarting
	}
	_ = m.update(id, func(s *store.SessionMeta) {
		s.Phase, s.Addr, s.Message = phase, addr, ""
		if phase == store.PhaseStarting {
			s.Message = "waiting for the session to answer"
		}
		addEvent(s, m.now(), "Normal", "Started", "Started container "+apps.ContainerName(id, ServiceName))
	})
	m.publishStatus(ctx, id)
	if addr == "" {
		return nil
	}
	m.waitReady(ctx, id, addr, readyPath(req.Type, id))
	m.Touch(id, m.now()) // idleness counts from when the session answers
	_ = m.update(id, func(s *store.SessionMeta) {
		if s.Phase == store.PhaseStarting {
			s.Phase, s.Message = store.PhaseStarted, ""
		}
	})
	m.publishStatus(ctx, id)
	return nil
}

func readyPath(typ, id string) string {
	if typ == client.TypeContributed {
		return "/"
	}
	return "/session/" + typ + "/" + id + "/"
}

// waitReady waits until the web session answers HTTP (any status), its
// container stops, or ReadyTimeout passes.
func (m *Manager) waitReady(ctx context.Context, id, addr, p string) {
	deadline := time.Now().Add(m.opts.ReadyTimeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p, nil)
		if err != nil {
			return
		}
		if resp, err := hc.Do(req); err == nil {
			_ = resp.Body.Close()
			return
		}
		if _, running, err := m.opts.Engine.ContainerExit(ctx, apps.ContainerName(id, ServiceName)); err != nil || !running {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
	m.log.Warn("web session does not answer; counting it as running", "id", id, "waited", m.opts.ReadyTimeout)
}

// writeXauthority writes an Xauthority file holding the cookie for every
// host's display, owned by uid:gid with mode 0600, and returns its path.
func (m *Manager) writeXauthority(id, display, cookieHex string, uid, gid int) (string, error) {
	cookie, err := hex.DecodeString(cookieHex)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "xauth is not hex")
	}
	num := strings.TrimPrefix(display, ":")
	num, _, _ = strings.Cut(num, ".")
	dir := filepath.Join(m.opts.StateDir, "sessions", id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("session directory: %w", err)
	}
	f := filepath.Join(dir, "Xauthority")
	if err := os.WriteFile(f, XauthorityEntry(num, cookie), 0o600); err != nil {
		return "", fmt.Errorf("write Xauthority: %w", err)
	}
	if err := os.Chown(f, uid, gid); err != nil && os.Geteuid() == 0 {
		return "", fmt.Errorf("chown Xauthority: %w", err)
	}
	return f, nil
}

// XauthorityEntry encodes one Xauthority record: family FamilyWild (any
// host), display number num, MIT-MAGIC-COOKIE-1 with cookie.
func XauthorityEntry(num string, cookie []byte) []byte {
	var b []byte
	field := func(v []byte) {
		b = append(b, byte(len(v)>>8), byte(len(v)))
		b = append(b, v...)
	}
	b = append(b, 0xff, 0xff) // FamilyWild
	field(nil)
	field([]byte(num))
	field([]byte("MIT-MAGIC-COOKIE-1"))
	field(cookie)
	return b
}

// update changes a session's metadata in the store.
func (m *Manager) update(id string, fn func(*store.SessionMeta)) error {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	rec, ok, err := m.opts.Store.App(id)
	if err != nil {
		return err
	}
	if !ok || rec.Session == nil {
		return errorf(http.StatusNotFound, "session %s not found", id)
	}
	fn(rec.Session)
	return m.opts.Store.PutApp(rec)
}

const maxEvents = 50

func addEvent(s *store.SessionMeta, at time.Time, typ, reason, msg string) {
	at = at.UTC()
	if n := len(s.Events); n > 0 && s.Events[n-1].Reason == reason && s.Events[n-1].Message == msg {
		s.Events[n-1].Last = at
		return
	}
	s.Events = append(s.Events, store.SessionEvent{Type: typ, Reason: reason, Message: msg, First: at, Last: at})
	if len(s.Events) > maxEvents {
		s.Events = s.Events[len(s.Events)-maxEvents:]
	}
}

// records returns every session record.
func (m *Manager) records() ([]store.AppRecord, error) {
	recs, err := m.opts.Store.Apps()
	if err != nil {
		return nil, err
	}
	out := recs[:0]
	for _, r := range recs {
		if r.App.Kind == apps.KindSession && r.Session != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

func containersByApp(cs []apps.Container) map[string]*apps.Container {
	out := map[string]*apps.Container{}
	for i := range cs {
		c := &cs[i]
		if c.Service == ServiceName {
			out[c.AppID] = c
		}
	}
	return out
}

var exitRE = regexp.MustCompile(`^Exited \((-?\d+)\)`)

// Status derives a session's status, message and exit code from its
// recorded phase and its container (nil: none).
func Status(s *store.SessionMeta, c *apps.Container) (status, message string, exit *int) {
	switch s.Phase {
	case store.PhasePending:
		return client.StatusPending, s.Message, nil
	case store.PhaseFailed:
		return client.StatusFailed, s.Message, nil
	case store.PhaseTerminating:
		return client.StatusTerminating, "", nil
	}
	if c == nil {
		return client.StatusFailed, "the session's container is gone", nil
	}
	switch c.State {
	case apps.StateRunning:
		if s.Phase == store.PhaseStarting {
			return client.StatusPending, s.Message, nil
		}
		return client.StatusRunning, "", nil
	case apps.StateCreated, "restarting":
		return client.StatusPending, "starting", nil
	case apps.StateExited, "dead":
		if mm := exitRE.FindStringSubmatch(c.Status); mm != nil {
			code, _ := strconv.Atoi(mm[1])
			if code == 0 {
				return client.StatusCompleted, "", &code
			}
			return client.StatusFailed, fmt.Sprintf("exited with code %d", code), &code
		}
		return client.StatusFailed, "the container stopped: " + c.Status, nil
	}
	return client.StatusPending, c.State, nil
}

// view renders a session for the API.
func (m *Manager) view(r store.AppRecord, c *apps.Container) client.Session {
	s := r.Session
	st, msg, exit := Status(s, c)
	v := client.Session{
		ID: r.App.ID, UserID: s.UserName, RunAsUID: strconv.Itoa(s.UID), RunAsGID: strconv.Itoa(s.GID),
		SupplementalGroups: s.Groups, Image: s.Image, Type: s.Type, Status: st, Name: s.Name,
		StartTime: s.Started.UTC().Format(time.RFC3339), ExpiryTime: s.Expiry.UTC().Format(time.RFC3339),
		RequestedGPUCores: "0", IsFixedResources: s.Fixed, Profile: s.Profile, Message: msg, ExitCode: exit,
	}
	if s.Cores > 0 {
		v.RequestedCPUCores = strconv.Itoa(s.Cores)
	}
	if s.RAMGB > 0 {
		v.RequestedRAM = strconv.Itoa(s.RAMGB) + "G"
	}
	if p := ConnectPath(s.Type, r.App.ID, s.Token); p != "" {
		base := ""
		if m.opts.WebBase != nil {
			base = SessionOrigin(m.opts.WebBase(), r.App.ID)
		}
		v.ConnectURL = base + p
	}
	last := s.LastActivity
	m.mu.Lock()
	if a, ok := m.activity[r.App.ID]; ok && a.After(last) {
		last = a
	}
	m.mu.Unlock()
	if !last.IsZero() {
		v.LastActivity = last.UTC().Format(time.RFC3339)
	}
	return v
}

// visible reports whether c may see the session.
func visible(c caller.Caller, s *store.SessionMeta) bool { return c.Admin || s.UID == c.UID }

// List returns the caller's sessions, filtered by type and status when
// given. Admins see every user's sessions. all is skaha's view=all: it
// shows no more to a user who is not an admin. Unlike skaha, where
// desktop-apps belong to a desktop session, desktop-app sessions are
// listed like the others.
func (m *Manager) List(ctx context.Context, c caller.Caller, typ, status string, all bool) ([]client.Session, error) {
	_ = all // admins see everyone's sessions anyway; others only their own
	if typ != "" && !slices.Contains(client.SessionTypes, typ) {
		return nil, errorf(http.StatusBadRequest, "unknown session type %q (known: %s)", typ, strings.Join(client.SessionTypes, ", "))
	}
	recs, err := m.records()
	if err != nil {
		return nil, err
	}
	cs, err := m.opts.Engine.ListAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	byApp := containersByApp(cs)
	out := []client.Session{}
	for _, r := range recs {
		s := r.Session
		if !visible(c, s) || (typ != "" && s.Type != typ) {
			continue
		}
		v := m.view(r, byApp[r.App.ID])
		if status != "" && v.Status != status {
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

// session returns a session the caller may see, or a 404 error.
func (m *Manager) session(c caller.Caller, id string) (store.AppRecord, error) {
	if id == "" || len(id) > 64 {
		return store.AppRecord{}, errorf(http.StatusNotFound, "session %q not found", id)
	}
	rec, ok, err := m.opts.Store.App(id)
	if err != nil {
		return rec, err
	}
	if !ok || rec.Session == nil || rec.App.Kind != apps.KindSession || !visible(c, rec.Session) {
		return rec, errorf(http.StatusNotFound, "session %s not found", id)
	}
	return rec, nil
}

func (m *Manager) container(ctx context.Context, id string) (*apps.Container, error) {
	cs, err := m.opts.Recon.Containers(ctx, id)
	if err != nil {
		return nil, err
	}
	return containersByApp(cs)[id], nil
}

// Get returns one session.
func (m *Manager) Get(ctx context.Context, c caller.Caller, id string) (client.Session, error) {
	rec, err := m.session(c, id)
	if err != nil {
		return client.Session{}, err
	}
	ct, err := m.container(ctx, id)
	if err != nil {
		return client.Session{}, err
	}
	return m.view(rec, ct), nil
}

// Logs returns the session container's output ("" when it has none).
func (m *Manager) Logs(ctx context.Context, c caller.Caller, id string) (string, error) {
	if _, err := m.session(c, id); err != nil {
		return "", err
	}
	ct, err := m.container(ctx, id)
	if err != nil || ct == nil {
		return "", err
	}
	return m.opts.Engine.Logs(ctx, ct.ID, 0)
}

// Events returns the session's events as skaha's text table, or "<none>".
func (m *Manager) Events(ctx context.Context, c caller.Caller, id string) (string, error) {
	rec, err := m.session(c, id)
	if err != nil {
		return "", err
	}
	return EventsTable(rec.Session.Events), nil
}

// EventsTable renders events as skaha's table (TYPE REASON MESSAGE
// FIRST-TIME LAST-TIME), or "<none>" when there are none.
func EventsTable(evs []store.SessionEvent) string {
	if len(evs) == 0 {
		return "<none>\n"
	}
	rows := [][]string{{"TYPE", "REASON", "MESSAGE", "FIRST-TIME", "LAST-TIME"}}
	for _, e := range evs {
		rows = append(rows, []string{e.Type, e.Reason, e.Message,
			e.First.UTC().Format(time.RFC3339), e.Last.UTC().Format(time.RFC3339)})
	}
	widths := make([]int, 5)
	for _, r := range rows {
		for i, f := range r {
			widths[i] = max(widths[i], len(f))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, f := range r {
			if i == len(r)-1 {
				b.WriteString(f)
			} else {
				b.WriteString(f + strings.Repeat(" ", widths[i]-len(f)+3))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Renew extends an active session's expiry to now plus its lifetime.
func (m *Manager) Renew(ctx context.Context, c caller.Caller, id string) error {
	rec, err := m.session(c, id)
	if err != nil {
		return err
	}
	ct, err := m.container(ctx, id)
	if err != nil {
		return err
	}
	if st, _, _ := Status(rec.Session, ct); st != client.StatusPending && st != client.StatusRunning {
		return errorf(http.StatusBadRequest, "No active job for session %s (it is %s).", id, st)
	}
	d := m.opts.Config.Expiry.Duration
	if rec.Session.Type == client.TypeHeadless {
		d = m.opts.Config.HeadlessExpiry.Duration
	}
	return m.update(id, func(s *store.SessionMeta) {
		if e := m.now().UTC().Add(d); e.After(s.Expiry) {
			s.Expiry = e
		}
		addEvent(s, m.now(), "Normal", "Renewed", "Expiry extended to "+s.Expiry.UTC().Format(time.RFC3339))
	})
}

// Delete stops a session's launch if it is in flight, removes its
// containers, its directory and its record.
func (m *Manager) Delete(ctx context.Context, c caller.Caller, id string) error {
	if _, err := m.session(c, id); err != nil {
		return err
	}
	return m.remove(ctx, id, "deleted")
}

func (m *Manager) remove(ctx context.Context, id, why string) error {
	m.mu.Lock()
	l := m.launches[id]
	m.mu.Unlock()
	if l != nil {
		l.cancel()
		select {
		case <-l.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var owner string
	if err := m.update(id, func(s *store.SessionMeta) {
		s.Phase = store.PhaseTerminating
		owner = strconv.Itoa(s.UID)
	}); err != nil {
		return err
	}
	m.publishEvent(owner, client.SessionEvent{ID: id, Status: client.StatusTerminating, Message: why})
	if err := m.opts.Recon.Remove(ctx, id, false, false); err != nil {
		return fmt.Errorf("remove session %s: %w", id, err)
	}
	if m.opts.StateDir != "" {
		if err := os.RemoveAll(filepath.Join(m.opts.StateDir, "sessions", id)); err != nil {
			m.log.Warn("cannot remove the session's directory", "id", id, "err", err)
		}
	}
	if err := m.opts.Store.DeleteApp(id); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.activity, id)
	delete(m.statuses, id)
	m.mu.Unlock()
	m.log.Info("session removed", "id", id, "reason", why)
	return nil
}

// Target returns where the proxy sends web session id's traffic; false
// when there is no such web session or it does not run.
func (m *Manager) Target(id string) (Target, bool) {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "/\x00") {
		return Target{}, false
	}
	rec, ok, err := m.opts.Store.App(id)
	if err != nil || !ok || rec.Session == nil || rec.Session.Addr == "" {
		return Target{}, false
	}
	s := rec.Session
	if s.Phase != store.PhaseStarted && s.Phase != store.PhaseStarting {
		return Target{}, false
	}
	return Target{ID: id, Type: s.Type, Owner: strconv.Itoa(s.UID), Token: s.Token, Addr: s.Addr,
		StripPrefix: s.Type == client.TypeContributed}, true
}

// Touch records traffic to session id through the proxy at at.
func (m *Manager) Touch(id string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if at.After(m.activity[id]) {
		m.activity[id] = at
	}
}

// Run recovers sessions whose launch a restart interrupted, then checks
// expiry and idleness every CheckInterval until ctx ends; then it stops
// every launch in flight and waits for them.
func (m *Manager) Run(ctx context.Context) {
	defer m.Close()
	m.recover(ctx)
	t := time.NewTicker(m.opts.CheckInterval)
	defer t.Stop()
	for {
		m.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recover settles sessions left Pending or Terminating by a berthd that
// stopped: a running container is kept, anything else fails or goes.
func (m *Manager) recover(ctx context.Context) {
	recs, err := m.records()
	if err != nil {
		m.log.Warn("cannot read sessions", "err", err)
		return
	}
	for _, r := range recs {
		id := r.App.ID
		m.mu.Lock()
		_, inFlight := m.launches[id]
		m.mu.Unlock()
		if inFlight {
			continue
		}
		switch r.Session.Phase {
		case store.PhaseTerminating:
			if err := m.remove(ctx, id, "deletion interrupted by a restart"); err != nil {
				m.log.Warn("cannot finish deleting a session", "id", id, "err", err)
			}
		case store.PhasePending, store.PhaseStarting:
			ct, err := m.container(ctx, id)
			if err != nil {
				continue
			}
			_ = m.update(id, func(s *store.SessionMeta) {
				if ct != nil && ct.State == apps.StateRunning && (s.Addr != "" || !IsWeb(s.Type)) {
					s.Phase, s.Message = store.PhaseStarted, ""
					return
				}
				s.Phase, s.Message = store.PhaseFailed, "berthd restarted while the session was starting"
			})
			if ct != nil && ct.State != apps.StateRunning {
				_ = m.opts.Recon.Remove(ctx, id, false, false)
			}
		}
	}
}

// check removes expired and idle sessions, saves activity, and publishes
// status changes.
func (m *Manager) check(ctx context.Context) {
	recs, err := m.records()
	if err != nil {
		m.log.Warn("cannot read sessions", "err", err)
		return
	}
	cs, err := m.opts.Engine.ListAll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("cannot list containers", "err", err)
		}
		return
	}
	byApp := containersByApp(cs)
	known := make(map[string]bool, len(recs))
	for _, r := range recs {
		known[r.App.ID] = true
	}
	m.mu.Lock()
	for id := range m.activity {
		if !known[id] {
			delete(m.activity, id)
		}
	}
	m.mu.Unlock()
	now := m.now()
	idle := m.opts.Config.IdleTimeout.Duration
	for _, r := range recs {
		if ctx.Err() != nil {
			return
		}
		id, s := r.App.ID, r.Session
		if s.Phase == store.PhaseTerminating {
			continue
		}
		if !now.Before(s.Expiry) {
			m.log.Info("session expired", "id", id, "expiry", s.Expiry)
			if err := m.remove(ctx, id, "expired"); err != nil {
				m.log.Warn("cannot remove an expired session", "id", id, "err", err)
			}
			continue
		}
		m.mu.Lock()
		act := m.activity[id]
		m.mu.Unlock()
		if act.After(s.LastActivity) {
			_ = m.update(id, func(s *store.SessionMeta) {
				if act.After(s.LastActivity) {
					s.LastActivity = act
				}
			})
		} else {
			act = s.LastActivity
		}
		st, msg, _ := Status(s, byApp[id])
		if idle > 0 && IsWeb(s.Type) && st == client.StatusRunning {
			since := s.Started
			if act.After(since) {
				since = act
			}
			if now.Sub(since) >= idle {
				m.log.Info("session idle, culling it", "id", id, "idle-since", since)
				if err := m.remove(ctx, id, "idle"); err != nil {
					m.log.Warn("cannot remove an idle session", "id", id, "err", err)
				}
				continue
			}
		}
		m.mu.Lock()
		prev, seen := m.statuses[id]
		m.statuses[id] = st
		m.mu.Unlock()
		if seen && prev != st {
			m.publishEvent(strconv.Itoa(s.UID), client.SessionEvent{ID: id, Status: st, Message: msg})
		}
	}
}

// publishStatus publishes the session's current status.
func (m *Manager) publishStatus(ctx context.Context, id string) {
	rec, ok, err := m.opts.Store.App(id)
	if err != nil || !ok || rec.Session == nil {
		return
	}
	ct, _ := m.container(ctx, id)
	st, msg, _ := Status(rec.Session, ct)
	m.mu.Lock()
	m.statuses[id] = st
	m.mu.Unlock()
	m.publishEvent(strconv.Itoa(rec.Session.UID), client.SessionEvent{ID: id, Status: st, Message: msg})
}

func (m *Manager) publish(id string, s *store.SessionMeta) {
	st, msg, _ := Status(s, nil)
	m.publishEvent(strconv.Itoa(s.UID), client.SessionEvent{ID: id, Status: st, Message: msg})
}

func (m *Manager) publishEvent(owner string, ev client.SessionEvent) {
	if m.opts.Hub != nil {
		m.opts.Hub.PublishFor(owner, events.TypeSession, ev)
	}
}

func (m *Manager) publishPull(owner string, p client.PullProgress) {
	if m.opts.Hub != nil {
		m.opts.Hub.PublishFor(owner, events.TypePull, p)
	}
}

// SessionOrigin is the origin a web session is served from: the web
// listener's port on the host <id>.localhost, an origin of its own, so the
// session's pages cannot script berthd's UI or another session (browsers
// resolve *.localhost to the loopback address). webBase is the web
// listener's base URL ("http://127.0.0.1:8484"); "" yields "".
func SessionOrigin(webBase, id string) string {
	u, err := url.Parse(strings.TrimSuffix(webBase, "/"))
	if err != nil || u.Host == "" {
		return ""
	}
	host := id + ".localhost"
	if port := u.Port(); port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host
}
