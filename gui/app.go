package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/berth-edge/berth/daemon/client"
)

// desktop is what the app asks of the window system. The Wails
// implementation (wailsDesktop) only works with the context Wails hands to
// OnStartup; tests use their own.
type desktop interface {
	// SetMenu replaces the menu bar's contents.
	SetMenu(nodes []*menuNode)
	// OpenURL opens url in the default browser.
	OpenURL(url string)
	// Info and Error show a message dialog.
	Info(title, message string)
	Error(title, message string)
	// Focus brings the window to the front.
	Focus()
	// Quit ends the application.
	Quit()
}

// hooks are the test and benchmark hooks, from the environment.
type hooks struct {
	// MenuDump receives the menu's labels as JSON each time it is built
	// (BERTH_DESKTOP_MENU_DUMP).
	MenuDump string
	// Timing receives the startup timings as JSON (BERTH_DESKTOP_TIMING).
	Timing string
	// QuitAfter quits that long after the page loaded
	// (BERTH_DESKTOP_QUIT_AFTER, a Go duration or seconds).
	QuitAfter time.Duration
}

// App is berth-desktop: the window's bound Go object (window.go.main.App)
// and the owner of the menu bar.
type App struct {
	log     *slog.Logger
	berthd  *berthd
	hooks   hooks
	version string
	started time.Time
	// refreshEvery is the fallback menu refresh period.
	refreshEvery time.Duration

	desk   desktop // set by start, before any loop runs
	deskMu sync.Mutex
	ctx    context.Context // cancelled by shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once // starts the loops

	refresh chan struct{}

	timingMu sync.Mutex
	timing   startupTiming
}

// startupTiming is what BERTH_DESKTOP_TIMING receives.
type startupTiming struct {
	// AppsAnsweredMS: launch → the first GET /api/v1/apps answered.
	AppsAnsweredMS float64 `json:"appsAnsweredMs,omitempty"`
	// PaintedMS: launch → the frontend reported its first apps list
	// painted (App.Painted("apps")).
	PaintedMS float64 `json:"paintedMs,omitempty"`
	// MenuMS: launch → the first menu with berthd's data.
	MenuMS float64 `json:"menuMs,omitempty"`
}

// newApp returns the app; started is the launch time the timings count
// from.
func newApp(log *slog.Logger, b *berthd, h hooks, version string, started time.Time) *App {
	ctx, cancel := context.WithCancel(context.Background())
	return &App{log: log, berthd: b, hooks: h, version: version, started: started,
		refreshEvery: time.Minute, ctx: ctx, cancel: cancel, refresh: make(chan struct{}, 1)}
}

// Painted is called by the frontend once it painted its first list of a
// view (window.go.main.App.Painted('apps')); the first call for "apps"
// records the startup time.
func (a *App) Painted(view string) {
	if view != "apps" {
		return
	}
	a.timingMu.Lock()
	first := a.timing.PaintedMS == 0
	if first {
		a.timing.PaintedMS = ms(time.Since(a.started))
	}
	t := a.timing
	a.timingMu.Unlock()
	if first {
		a.log.Info("first apps list painted", "since_launch", time.Duration(t.PaintedMS*float64(time.Millisecond)).Round(time.Millisecond))
		a.writeTiming(t)
	}
}

// appsAnswered records the first GET /api/v1/apps forwarded to the page.
func (a *App) appsAnswered() {
	a.timingMu.Lock()
	a.timing.AppsAnsweredMS = ms(time.Since(a.started))
	t := a.timing
	a.timingMu.Unlock()
	a.writeTiming(t)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// start runs the menu loop, the event watcher and the quit hook (once,
// when the page has loaded).
func (a *App) start(d desktop) {
	a.once.Do(func() {
		a.deskMu.Lock()
		a.desk = d
		a.deskMu.Unlock()
		a.wg.Add(2)
		go func() { defer a.wg.Done(); a.menuLoop() }()
		go func() { defer a.wg.Done(); a.eventLoop() }()
		if a.hooks.QuitAfter > 0 {
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				select {
				case <-time.After(a.hooks.QuitAfter):
					a.log.Info("quitting (BERTH_DESKTOP_QUIT_AFTER)", "after", a.hooks.QuitAfter)
					d.Quit()
				case <-a.ctx.Done():
				}
			}()
		}
	})
}

// stop ends the loops and waits for them.
func (a *App) stop() {
	a.cancel()
	a.wg.Wait()
}

// requestRefresh asks the menu loop to rebuild the menu (never blocks).
func (a *App) requestRefresh() {
	select {
	case a.refresh <- struct{}{}:
	default:
	}
}

// menuLoop rebuilds the menu now, on request and every refreshEvery.
func (a *App) menuLoop() {
	t := time.NewTicker(a.refreshEvery)
	defer t.Stop()
	first := true
	for {
		d := a.berthd.menuData(a.ctx)
		if a.ctx.Err() != nil {
			return
		}
		nodes := buildMenu(d, a)
		a.desk.SetMenu(nodes)
		if first && d.CatalogErr == "" {
			first = false
			a.timingMu.Lock()
			a.timing.MenuMS = ms(time.Since(a.started))
			tm := a.timing
			a.timingMu.Unlock()
			a.writeTiming(tm)
		}
		a.dumpMenu(nodes)
		select {
		case <-a.ctx.Done():
			return
		case <-a.refresh:
			// Coalesce a burst of events into one rebuild.
			select {
			case <-time.After(200 * time.Millisecond):
			case <-a.ctx.Done():
				return
			}
		case <-t.C:
		}
	}
}

// eventLoop follows berthd's event stream and refreshes the menu when the
// catalog, the sessions or the apps change; it reconnects with a growing
// delay when berthd goes away.
func (a *App) eventLoop() {
	delay := time.Second
	for {
		start := time.Now()
		err := a.berthd.watchEvents(a.ctx, func(typ string) {
			switch typ {
			case "catalog", "session", "app":
				a.requestRefresh()
			}
		})
		if a.ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			delay = time.Second
		}
		a.log.Debug("event stream ended; reconnecting", "err", err, "in", delay)
		// berthd may have restarted: its catalog may have changed.
		a.requestRefresh()
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// launchItem starts item as a session of type typ; web sessions open in
// the browser once running (menuActions).
func (a *App) launchItem(item client.MenuItem, typ string) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.launch(item, typ); err != nil {
			a.log.Warn("launch failed", "image", item.Image, "type", typ, "err", err)
			a.desk.Error("Cannot launch "+item.Label, err.Error())
		}
	}()
}

func (a *App) launch(item client.MenuItem, typ string) error {
	var display, xauth string
	if typ == client.TypeDesktopApp {
		var err error
		display, xauth, err = displayCookie()
		if display == "" {
			return err
		}
		if err != nil {
			a.log.Warn("no X authorization cookie for the session", "display", display, "err", err)
		}
	}
	suffix := make([]byte, 2)
	_, _ = rand.Read(suffix)
	form := launchForm(item, typ, sessionName(cmp.Or(item.Image, item.Profile), hex.EncodeToString(suffix)), display, xauth)
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	id, err := a.berthd.launch(ctx, form)
	cancel()
	if err != nil {
		return err
	}
	a.log.Info("session launched", "id", id, "image", item.Image, "type", typ)
	a.requestRefresh()
	if typ == client.TypeDesktopApp || typ == client.TypeHeadless {
		return nil // windows appear on the display; headless has no UI
	}
	// Open web sessions once they run (the image may need a pull first).
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-a.ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
		s, err := a.berthd.session(ctx, id)
		cancel()
		switch {
		case err != nil:
			a.log.Debug("polling the new session", "id", id, "err", err)
		case s.Status == client.StatusRunning && s.ConnectURL != "":
			a.desk.OpenURL(s.ConnectURL)
			return nil
		case s.Status == client.StatusFailed || s.Status == client.StatusCompleted:
			return fmt.Errorf("session %s %s: %s", id, strings.ToLower(s.Status), cmp.Or(s.Message, "no message"))
		}
	}
	return fmt.Errorf("session %s did not start within 15 minutes", id)
}

// open opens url in the default browser (menuActions).
func (a *App) open(url string) { a.desk.OpenURL(url) }

// refreshMenu rebuilds the menu (menuActions).
func (a *App) refreshMenu() { a.requestRefresh() }

// quit ends the program (menuActions).
func (a *App) quit() { a.desk.Quit() }

// about shows the versions (menuActions).
func (a *App) about() {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
		defer cancel()
		st, err := a.berthd.get.Status(ctx)
		berthdVersion := st.Version
		if err != nil {
			berthdVersion = "not reachable (" + describe(err) + ")"
		}
		a.desk.Info("About Berth Desktop", aboutText(a.version, berthdVersion, wailsVersion(), webkitVersion(), a.berthd.socket))
	}()
}

// aboutText is the About dialog's text.
func aboutText(version, berthdVersion, wails, webkit, socket string) string {
	return fmt.Sprintf("Berth Desktop %s\n\nberthd: %s (%s)\nWails: %s\nWebKitGTK: %s\n\n%s",
		version, berthdVersion, socket, wails, webkit, "Runs the astronomy software of the catalog as sessions on this box.")
}

// wailsVersion is the Wails module version this binary was built with.
func wailsVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/wailsapp/wails/v2" {
				return d.Version
			}
		}
	}
	return "unknown"
}

// secondInstance focuses this window when berth-desktop is started again.
func (a *App) secondInstance() {
	a.log.Info("berth-desktop started again: focusing this window")
	a.deskMu.Lock()
	d := a.desk
	a.deskMu.Unlock()
	if d != nil {
		d.Focus()
	}
}

// dumpMenu writes the menu's labels for the BERTH_DESKTOP_MENU_DUMP hook.
func (a *App) dumpMenu(nodes []*menuNode) {
	if a.hooks.MenuDump == "" {
		return
	}
	if err := writeJSONFile(a.hooks.MenuDump, menuLabels(nodes)); err != nil {
		a.log.Warn("writing the menu dump", "err", err)
	}
}

func (a *App) writeTiming(t startupTiming) {
	if a.hooks.Timing == "" {
		return
	}
	if err := writeJSONFile(a.hooks.Timing, t); err != nil {
		a.log.Warn("writing the timing file", "err", err)
	}
}

// writeJSONFile replaces path atomically with v's JSON.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".berth-desktop-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
