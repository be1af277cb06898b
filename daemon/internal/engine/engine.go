// Package engine carries out the planner's actions on the local Docker engine
// and reports what Docker really has, in the apps package's terms.
//
// Everything berth creates carries the labels of apps.App.Labels, so the
// engine finds its containers (and volumes) by label, never by name alone:
// berth.app=<app id> for one app, berth.managed=true for all of them.
//
// The engine is safe for concurrent use. It never logs a container's
// environment nor a registry password.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// pingTimeout bounds the reachability check of New when ctx has no deadline.
const pingTimeout = 10 * time.Second

// Options configure an Engine.
type Options struct {
	// Host is the Docker endpoint, e.g. "unix:///var/run/docker.sock". Empty
	// means DOCKER_HOST from the environment, else the default unix socket.
	Host string
	// Logger receives the engine's log lines; nil discards them.
	Logger *slog.Logger
	// DependencyTimeout bounds the wait for a depends_on dependency to
	// become healthy or complete (default 5 minutes).
	DependencyTimeout time.Duration
}

// Engine drives the local Docker engine.
type Engine struct {
	cli        *client.Client
	log        *slog.Logger
	depTimeout time.Duration
}

// ServerInfo describes the Docker engine berth talks to.
type ServerInfo struct {
	Version    string `json:"version"`
	APIVersion string `json:"api-version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	// SwarmManager is true when the engine is a swarm manager node.
	SwarmManager bool `json:"swarm-manager"`
}

// New connects to Docker, negotiates the API version and checks that the
// engine answers. The error says how to start Docker when it does not.
func New(ctx context.Context, opts Options) (*Engine, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	copts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if opts.Host != "" {
		copts = append(copts, client.WithHost(opts.Host))
	}
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %q: %w", opts.Host, err)
	}
	pctx, cancel := withDefaultTimeout(ctx, pingTimeout)
	defer cancel()
	ping, err := cli.Ping(pctx)
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("docker engine at %s does not answer (is Docker installed and running? "+
			"start it with `sudo systemctl start docker`, or set DOCKER_HOST to its socket): %w",
			cli.DaemonHost(), err)
	}
	cli.NegotiateAPIVersionPing(ping)
	e := &Engine{cli: cli, log: log.With("component", "engine"), depTimeout: opts.DependencyTimeout}
	e.log.Debug("connected to docker", "host", cli.DaemonHost(), "api", cli.ClientVersion())
	return e, nil
}

// Close releases the client's idle connections.
func (e *Engine) Close() error {
	if err := e.cli.Close(); err != nil {
		return fmt.Errorf("close docker client: %w", err)
	}
	return nil
}

// Client returns the underlying Docker client, for tests and diagnostics.
func (e *Engine) Client() *client.Client { return e.cli }

// Ping asks the engine for its version and swarm role.
func (e *Engine) Ping(ctx context.Context) (ServerInfo, error) {
	v, err := e.cli.ServerVersion(ctx)
	if err != nil {
		return ServerInfo{}, fmt.Errorf("docker version: %w", err)
	}
	si := ServerInfo{Version: v.Version, APIVersion: v.APIVersion, OS: v.Os, Arch: v.Arch}
	info, err := e.cli.Info(ctx)
	if err != nil {
		return si, fmt.Errorf("docker info: %w", err)
	}
	si.SwarmManager = info.Swarm.ControlAvailable
	return si, nil
}

// IsNotFound reports whether err says a Docker object does not exist.
func IsNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// IsConflict reports whether err says a Docker object already exists or is in use.
func IsConflict(err error) bool { return cerrdefs.IsConflict(err) }

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
