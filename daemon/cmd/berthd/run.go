package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/term"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/agent"
	"github.com/berth-edge/berth/daemon/internal/api"
	"github.com/berth-edge/berth/daemon/internal/catalog"
	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/events"
	"github.com/berth-edge/berth/daemon/internal/jobs"
	"github.com/berth-edge/berth/daemon/internal/logring"
	"github.com/berth-edge/berth/daemon/internal/metrics"
	"github.com/berth-edge/berth/daemon/internal/profiles"
	"github.com/berth-edge/berth/daemon/internal/reconcile"
	"github.com/berth-edge/berth/daemon/internal/sessionproxy"
	"github.com/berth-edge/berth/daemon/internal/sessions"
	"github.com/berth-edge/berth/daemon/internal/store"
	"github.com/berth-edge/berth/daemon/internal/telemetry"
)

// Local telemetry: a sample every telemetryInterval (the control plane
// gets its own at its refresh interval), the last telemetryHistory kept.
const (
	telemetryInterval = 10 * time.Second
	telemetryHistory  = 60
)

// run starts every part, reports READY=1 once the local API serves, and
// shuts down in order when ctx ends: stop taking requests, stop the loops
// and wait for them, then close Docker and the store.
func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	started := time.Now()
	ring := logring.New(logring.DefaultSize)
	log = slog.New(ring.Handler(log.Handler()))
	ver := buildVersion()
	notify := newNotifier(log)
	defer notify.send(daemon.SdNotifyStopping)

	if cfg.Standalone() {
		log.Info("starting berthd", "version", ver, "mode", "standalone", "state", cfg.StatePath())
	} else {
		log.Info("starting berthd", "version", ver, "mode", "nuvla", "endpoint", cfg.Nuvla.Endpoint, "nuvlabox", cfg.Nuvla.NuvlaboxID, "state", cfg.StatePath())
	}
	notify.status("opening state file")
	st, err := store.Open(cfg.StatePath(), store.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("open state: %w", err)
	}
	defer st.Close()

	if cfg.Standalone() {
		// A box linked to a control plane from the local API (POST
		// /api/v1/nuvla) stays linked across restarts once it holds a key.
		if id, ok, err := st.Identity(); err == nil && ok && id.Endpoint != "" && id.APIKey != "" {
			cfg.Nuvla = config.Nuvla{Endpoint: id.Endpoint, NuvlaboxID: id.NuvlaboxID, Insecure: id.Insecure}
			log.Info("using the control plane this box was linked to", "endpoint", id.Endpoint, "nuvlabox", id.NuvlaboxID)
		}
	}

	eng, err := connectDocker(ctx, cfg.Docker.Host, log, notify)
	if err != nil {
		return err
	}
	defer eng.Close()

	recon := reconcile.New(st, eng, log.With("component", "reconcile"))
	hub := &events.Hub{}
	stats := engine.NewStatsReader(eng)
	defer stats.Close()
	history := telemetry.NewHistory(telemetryHistory)
	sampler := &telemetry.Sampler{
		DockerVersion: func(ctx context.Context) string {
			info, err := eng.Ping(ctx)
			if err != nil {
				return ""
			}
			return info.Version
		},
		Containers: stats.Read,
		Coe:        stats.RawLists,
		Install:    telemetry.Install{WorkingDir: cfg.StateDir, ConfigFiles: []string{configFile}},
	}
	recorder := &telemetry.Recorder{
		Sampler:  sampler,
		History:  history,
		OnSample: func(s client.Sample) { hub.Publish(events.TypeTelemetry, s) },
		Logger:   log.With("component", "telemetry"),
	}
	var ag *agent.Agent
	mets := metrics.New(metrics.Sources{
		Latest: history.Latest,
		Link:   func() *client.Nuvla { return ag.Link() },
	})
	obs := newObserver(hub, mets, st)
	recon.Changed = obs.appChanged
	ag = agent.New(agent.Options{
		Config:            cfg.Nuvla,
		Store:             st,
		Recon:             recon,
		Recorder:          recorder,
		Logs:              eng.Logs,
		Logger:            log,
		Version:           ver,
		UserAgent:         "berthd/" + ver,
		Notify:            notify.status,
		JobsChanged:       obs.jobsChanged,
		ControlPlaneError: mets.ControlPlaneError,
		TelemetrySent:     mets.TelemetrySent,
		Host: jobs.HostOptions{
			Docker:      eng,
			Log:         ring,
			AllowReboot: cfg.Host.AllowReboot,
			SSHUser:     cfg.Host.SSHUser,
		},
	})
	// The api server is built after the sessions manager (which gives it
	// routes), so connect URLs read its web address through srv.
	var srv *api.Server
	profs, err := profiles.Load(cfg.Sessions.ProfilesDir, profiles.WithLogger(log))
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	for _, perr := range profs.Errors() {
		log.Warn("profile ignored", "err", perr)
	}
	cat, err := catalog.New(catalog.Options{
		Local:       eng,
		Credentials: st,
		Registries:  cfg.Catalog.Registries,
		Refresh:     cfg.Catalog.Refresh.Duration,
		Profiles:    profs.List,
		Logger:      log,
	})
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	sessMgr, err := sessions.New(sessions.Options{
		Profiles: profs,
		PullAuth: cat.PullAuth,
		Store:    st,
		Recon:    recon,
		Engine:   eng,
		Hub:      hub,
		Logger:   log,
		Config:   cfg.Sessions,
		StateDir: cfg.StateDir,
		WebBase: func() string {
			if srv == nil {
				return ""
			}
			base, _, _ := strings.Cut(srv.WebURL(), "/?")
			return base
		},
	})
	if err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	defer sessMgr.Close()
	backend := &agent.Backend{Agent: ag, Store: st, Docker: eng, Version: ver, Started: started,
		History: history, Recorder: recorder, Hub: hub, MetricsHandler: mets.Handler()}
	webAs := webUser(cfg.Sessions.WebUser)
	srv, err = api.New(backend, api.Options{
		Socket:       cfg.Socket,
		SocketGroup:  cfg.SocketGroup,
		WebListen:    cfg.Web.Listen,
		WebTokenFile: filepath.Join(cfg.StateDir, "web-token"),
		Logger:       log,
		Version:      ver,
		AdminGroup:   cfg.Sessions.AdminGroup,
		WebUser:      webAs,
		Routes:       []api.Routes{sessMgr.Routes(), cat.Routes(), profs.Routes()},
		SessionProxy: sessionproxy.New(proxyResolver{sessMgr}, log),
	})
	if err != nil {
		return fmt.Errorf("local API: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("local API: %w", err)
	}
	if u := srv.WebURL(); u != "" {
		// The token opens the UI: log where it is kept, and show the full
		// URL only to the person at the terminal.
		base, _, _ := strings.Cut(u, "?")
		log.Info("web UI ready", "url", base, "token-file", filepath.Join(cfg.StateDir, "web-token"), "sessions-run-as", webAs)
		if term.IsTerminal(int(os.Stderr.Fd())) {
			fmt.Fprintf(os.Stderr, "\n  Open the web UI: %s\n\n", u)
		}
	}
	log.Info("local API ready", "socket", cfg.Socket)

	var wg sync.WaitGroup
	wg.Add(6)
	go func() {
		defer wg.Done()
		sessMgr.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		if err := cat.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("catalog stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-cat.Changed():
				hub.Publish(events.TypeCatalog, struct{}{})
			}
		}
	}()
	go func() {
		defer wg.Done()
		recorder.Run(ctx, telemetryInterval)
	}()
	go func() {
		defer wg.Done()
		recon.Run(ctx, eng.Events(ctx), cfg.Docker.ResyncInterval.Duration, nil)
	}()
	go func() {
		defer wg.Done()
		if err := ag.Run(ctx); err != nil {
			log.Error("agent stopped", "err", err)
		}
	}()
	state, msg := ag.State()
	notify.send(daemon.SdNotifyReady + "\nSTATUS=" + statusLine(state, msg))

	mainLoop(ctx, notify)

	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("local API shutdown", "err", err)
	}
	cancel()
	wg.Wait()
	log.Info("stopped")
	return nil
}

// proxyResolver lets the session proxy find sessions in the manager.
type proxyResolver struct{ m *sessions.Manager }

func (r proxyResolver) Target(id string) (sessionproxy.Target, bool) {
	t, ok := r.m.Target(id)
	return sessionproxy.Target(t), ok
}

func (r proxyResolver) Touch(id string, at time.Time) { r.m.Touch(id, at) }

// webUser is the user the web listener acts for: the configured one;
// else, when berthd runs as root, the user who ran sudo, or the box's first
// regular user (the lowest uid from 1000 up, the person at a desktop), or
// nobody; else berthd's own user. Sessions never run as root.
func webUser(configured string) string {
	if configured != "" {
		return configured
	}
	if os.Geteuid() != 0 {
		return strconv.Itoa(os.Geteuid())
	}
	if u := os.Getenv("SUDO_UID"); u != "" && u != "0" {
		return u
	}
	if u := firstRegularUser("/etc/passwd"); u != "" {
		return u
	}
	return "nobody"
}

// firstRegularUser returns the lowest uid in [1000, 60000) of a passwd
// file, or "".
func firstRegularUser(passwd string) string {
	b, err := os.ReadFile(passwd)
	if err != nil {
		return ""
	}
	best := -1
	for line := range strings.Lines(string(b)) {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		uid, err := strconv.Atoi(f[2])
		if err != nil || uid < 1000 || uid >= 60000 {
			continue
		}
		if best < 0 || uid < best {
			best = uid
		}
	}
	if best < 0 {
		return ""
	}
	return strconv.Itoa(best)
}

// connectDocker waits for the Docker engine, telling systemd why it waits.
func connectDocker(ctx context.Context, host string, log *slog.Logger, notify *notifier) (*engine.Engine, error) {
	delay := time.Second
	for {
		eng, err := engine.New(ctx, engine.Options{Host: host, Logger: log})
		if err == nil {
			return eng, nil
		}
		if ctx.Err() != nil {
			return nil, errors.Join(ctx.Err(), err)
		}
		log.Warn("waiting for Docker", "err", err, "retry-in", delay)
		notify.status("waiting for Docker: " + err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// mainLoop runs until ctx ends. When systemd's watchdog is on, it pings it
// at half the interval from this loop, so a hung main loop stops the pings
// and systemd restarts berthd.
func mainLoop(ctx context.Context, notify *notifier) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getenv("BERTH_TEST_HANG") == "1" {
				continue // test hook: behave like a hung loop
			}
			notify.send(daemon.SdNotifyWatchdog)
		}
	}
}

func statusLine(state, msg string) string {
	if msg == "" {
		return state
	}
	return state + ": " + msg
}

// notifier sends sd_notify messages; without NOTIFY_SOCKET it does nothing.
type notifier struct {
	log *slog.Logger
	mu  sync.Mutex
}

func newNotifier(log *slog.Logger) *notifier { return &notifier{log: log} }

func (n *notifier) send(state string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("cannot notify systemd", "err", err)
	}
}

func (n *notifier) status(s string) { n.send("STATUS=" + s) }
