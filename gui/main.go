// Command berth-desktop is Berth's desktop app (Wails v2): a window showing
// the web UI of package frontend, whose /api, /skaha and /session requests
// go to berthd's unix socket (Forwarder), and a native menu bar: Astro
// Software → project → image:version launches sessions as the desktop
// user, Apps opens the running apps in the browser, Help → About shows the
// versions. It is a thin client of berthd's local API and never opens
// berthd's state.
//
// Build it with the Makefile (make desktop), or with the Wails CLI from
// this directory (wails build). A build without the tags desktop,production
// and webkit2_41 only serves the tests.
//
// Test and benchmark hooks (environment): BERTH_DESKTOP_MENU_DUMP=<file>
// receives the menu's labels as JSON each time the menu is built;
// BERTH_DESKTOP_TIMING=<file> receives the startup timings (launch → first
// apps list answered, painted, first menu) as JSON;
// BERTH_DESKTOP_QUIT_AFTER=<duration> quits that long after the page
// loaded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/menu"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"

	_ "embed"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/frontend"
)

// version is set at build time (-X main.version=...).
var version = "0.0.0-dev"

//go:embed appicon.png
var icon []byte

// config is what the command line and the environment say.
type config struct {
	socket  string
	hooks   hooks
	verbose bool
}

func main() {
	started := time.Now()
	cfg, err := parseArgs(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-desktop:", err)
		os.Exit(2)
	}
	if cfg == nil { // --version
		fmt.Println("berth-desktop", version)
		return
	}
	if err := run(cfg, started); err != nil {
		fmt.Fprintln(os.Stderr, "berth-desktop:", err)
		os.Exit(1)
	}
}

// parseArgs reads the flags and the environment; a nil config means the
// version was asked for.
func parseArgs(args []string, getenv func(string) string) (*config, error) {
	fs := flag.NewFlagSet("berth-desktop", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: berth-desktop [flags]\n\n"+
			"berth-desktop is Berth's desktop app: the apps berthd runs on this box, in a window,\n"+
			"and the Astro Software menu to launch sessions. It talks to berthd over its socket.\n\n")
		fs.PrintDefaults()
	}
	socket := client.DefaultSocket
	if s := getenv("BERTH_SOCKET"); s != "" {
		socket = s
	}
	fs.StringVar(&socket, "socket", socket, "berthd's local API socket (env BERTH_SOCKET)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	verbose := fs.Bool("verbose", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *showVersion {
		return nil, nil
	}
	cfg := &config{socket: socket, verbose: *verbose, hooks: hooks{
		MenuDump: getenv("BERTH_DESKTOP_MENU_DUMP"),
		Timing:   getenv("BERTH_DESKTOP_TIMING"),
	}}
	if q := getenv("BERTH_DESKTOP_QUIT_AFTER"); q != "" {
		d, err := parseDelay(q)
		if err != nil {
			return nil, fmt.Errorf("BERTH_DESKTOP_QUIT_AFTER: %w", err)
		}
		cfg.hooks.QuitAfter = d
	}
	return cfg, nil
}

// parseDelay reads a Go duration ("90s") or a number of seconds ("90").
func parseDelay(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil && n > 0 {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (e.g. 30s) or number of seconds", s)
	}
	return d, nil
}

// webkitEnv sets WebKit's environment before GTK starts: on NVIDIA's
// proprietary driver the DMA-BUF renderer draws a blank window.
func webkitEnv(log *slog.Logger, sysModule string) {
	if os.Getenv("WEBKIT_DISABLE_DMABUF_RENDERER") != "" {
		return
	}
	if _, err := os.Stat(sysModule + "/nvidia"); err == nil {
		log.Info("NVIDIA driver loaded: disabling WebKit's DMA-BUF renderer")
		_ = os.Setenv("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
	}
}

func run(cfg *config, started time.Time) error {
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	webkitEnv(log, "/sys/module")

	app := newApp(log, newBerthd(cfg.socket), cfg.hooks, version, started)
	fwd := NewForwarder(cfg.socket, log, app.appsAnswered)
	err := wails.Run(&options.App{
		Title:     "Berth",
		Width:     1180,
		Height:    780,
		MinWidth:  720,
		MinHeight: 480,
		AssetServer: &assetserver.Options{
			Assets:     frontend.FS(),
			Middleware: fwd.Middleware,
		},
		// The menu bar exists from the start; the app fills it in place
		// once the window is up (setNativeMenu).
		Menu: initialMenu(),
		OnDomReady: func(ctx context.Context) {
			app.start(wailsDesktop{ctx: ctx, log: log})
		},
		OnShutdown: func(context.Context) { app.stop() },
		Bind:       []any{app},
		SingleInstanceLock: &options.SingleInstanceLock{
			UniqueId:               "io.github.berth_edge.berth_desktop.uid" + strconv.Itoa(os.Getuid()),
			OnSecondInstanceLaunch: func(options.SecondInstanceData) { app.secondInstance() },
		},
		Linux: &linux.Options{
			Icon: icon,
			// Never: no GPU compositing, so the window is not blank on
			// NVIDIA, in VMs or under Xvfb.
			WebviewGpuPolicy: linux.WebviewGpuPolicyNever,
			ProgramName:      "berth-desktop",
		},
	})
	if err != nil && strings.Contains(err.Error(), "build tags") {
		return fmt.Errorf("%w (build with: go build -tags desktop,production,webkit2_41 ./gui)", err)
	}
	return err
}

// initialMenu is the menu bar shown before berthd answered.
func initialMenu() *menu.Menu {
	return toWailsMenu(buildMenu(menuData{Loading: true}, nopActions{}))
}

// toWailsMenu converts a tree to Wails' menu type (for the first menu bar,
// which Wails builds itself).
func toWailsMenu(nodes []*menuNode) *menu.Menu {
	m := menu.NewMenu()
	for _, n := range nodes {
		m.Append(toWailsItem(n))
	}
	return m
}

func toWailsItem(n *menuNode) *menu.MenuItem {
	if n.Separator {
		return menu.Separator()
	}
	if len(n.Children) > 0 {
		return menu.SubMenu(n.Label, toWailsMenu(n.Children))
	}
	it := menu.Text(n.Label, nil, nil)
	if n.Action != nil {
		action := n.Action
		it.Click = func(*menu.CallbackData) { action() }
	}
	it.Disabled = n.Disabled
	return it
}

// nopActions are the initial menu's actions: nothing until the app runs.
type nopActions struct{}

func (nopActions) launchItem(client.MenuItem, string) {}
func (nopActions) open(string)                        {}
func (nopActions) refreshMenu()                       {}
func (nopActions) about()                             {}
func (nopActions) quit()                              {}
