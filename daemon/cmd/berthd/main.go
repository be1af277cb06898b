// Command berthd keeps the apps a Nuvla control plane (or the person at the
// box) asked for running on the local Docker engine, and reports what is
// really there. See README.md and docs/ for how to run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/berth-edge/berth/daemon/internal/config"
	"github.com/berth-edge/berth/daemon/internal/logging"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	cfg, showVersion, err := parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(2)
	}
	if showVersion {
		fmt.Println("berthd", buildVersion())
		return
	}
	level, _ := logging.Parse(cfg.LogLevel) // validated already
	log := logging.New(os.Stderr, level, logging.StderrIsJournal())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	if err := run(ctx, cfg, log); err != nil {
		log.Error("berthd stopped", "err", err)
		os.Exit(1)
	}
}

// parse builds the configuration: the file, then the environment, then the
// flags, then validation of the whole.
func parse(args []string, getenv config.Getenv, out io.Writer) (config.Config, bool, error) {
	fs := flag.NewFlagSet("berthd", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		path        = fs.String("config", config.DefaultPath, "configuration file (TOML)")
		stateDir    = fs.String("state-dir", "", "directory of the state file (default "+config.DefaultStateDir+")")
		socket      = fs.String("socket", "", "local API unix socket (default "+config.DefaultSocket+")")
		endpoint    = fs.String("nuvla-endpoint", "", "Nuvla endpoint, e.g. https://nuvla.io (env NUVLA_ENDPOINT); none: standalone")
		boxID       = fs.String("nuvlabox-id", "", "nuvlabox id or uuid (env NUVLAEDGE_UUID)")
		insecure    = fs.Bool("insecure", false, "skip TLS verification of the Nuvla endpoint (env NUVLA_ENDPOINT_INSECURE)")
		dockerHost  = fs.String("docker-host", "", "Docker endpoint, e.g. unix:///var/run/docker.sock (default: DOCKER_HOST or the default socket)")
		webListen   = fs.String("web-listen", "", "loopback address of the web UI (default "+config.DefaultWebListen+`; "off" disables it)`)
		logLevel    = fs.String("log-level", "", "debug, info, warn or error")
		showVersion = fs.Bool("version", false, "print the version and exit")
	)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: berthd [flags]\n\nberthd runs the apps a Nuvla control plane or the local user asks for on the local Docker engine.\nSettings come from the config file, then the environment, then these flags.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config.Config{}, false, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, false, fmt.Errorf("unexpected argument %q (see berthd -h)", fs.Arg(0))
	}
	if *showVersion {
		return config.Config{}, true, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	configFile = *path
	cfg, err := config.Load(*path, !set["config"])
	if err != nil {
		return cfg, false, err
	}
	if err := cfg.ApplyEnv(getenv); err != nil {
		return cfg, false, err
	}
	if set["state-dir"] {
		cfg.StateDir = *stateDir
	}
	if set["socket"] {
		cfg.Socket = *socket
	}
	if set["nuvla-endpoint"] {
		cfg.Nuvla.Endpoint = *endpoint
	}
	if set["nuvlabox-id"] {
		cfg.Nuvla.NuvlaboxID = *boxID
	}
	if set["insecure"] {
		cfg.Nuvla.Insecure = *insecure
	}
	if set["docker-host"] {
		cfg.Docker.Host = *dockerHost
	}
	if set["web-listen"] {
		cfg.Web.Listen = *webListen
		if *webListen == "off" {
			cfg.Web.Listen = ""
		}
	}
	if set["log-level"] {
		cfg.LogLevel = *logLevel
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return cfg, false, err
	}
	return cfg, false, nil
}

// configFile is the configuration file berthd was started with (reported
// in the telemetry's installation-parameters).
var configFile = config.DefaultPath

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.0.0-dev"
}
