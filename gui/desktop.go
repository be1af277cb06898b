package main

import (
	"context"
	"log/slog"

	"github.com/wailsapp/wails/v2/pkg/runtime"
)

// wailsDesktop is desktop on Wails' runtime. Its context must be the one
// Wails passes to OnStartup: the runtime calls log.Fatalf on any other.
type wailsDesktop struct {
	ctx context.Context
	log *slog.Logger
}

func (d wailsDesktop) SetMenu(nodes []*menuNode) {
	setNativeMenu(nodes, func() { d.log.Warn("the window has no menu bar to fill") })
}

func (d wailsDesktop) OpenURL(url string) { runtime.BrowserOpenURL(d.ctx, url) }

func (d wailsDesktop) Info(title, message string) {
	d.dialog(runtime.InfoDialog, title, message)
}

func (d wailsDesktop) Error(title, message string) {
	d.dialog(runtime.ErrorDialog, title, message)
}

func (d wailsDesktop) dialog(typ runtime.DialogType, title, message string) {
	if _, err := runtime.MessageDialog(d.ctx, runtime.MessageDialogOptions{Type: typ, Title: title, Message: message}); err != nil {
		d.log.Warn("showing a dialog", "title", title, "err", err)
	}
}

func (d wailsDesktop) Focus() {
	runtime.WindowUnminimise(d.ctx)
	runtime.WindowShow(d.ctx)
}

func (d wailsDesktop) Quit() { runtime.Quit(d.ctx) }
