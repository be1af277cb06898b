package installer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/goreleaser/nfpm/v2/files"
)

// DesktopLintianOverrides are the lintian findings the berth-desktop
// package accepts, each for a reason:
//
//   - initial-upload-closes-no-bugs: the package is not uploaded to Debian,
//     so there is no ITP bug to close.
var DesktopLintianOverrides = []string{
	"berth-desktop: initial-upload-closes-no-bugs",
}

// desktopSpec stages the berth-desktop package: the Wails app (cgo, GTK 3
// and WebKitGTK 4.1), its desktop entry, icons and XDG autostart entry.
func desktopSpec(ctx context.Context, s *stage) (*spec, error) {
	if s.opts.Arch != runtime.GOARCH {
		return nil, fmt.Errorf("berth-desktop links GTK and WebKitGTK with cgo: build it on a %s machine (this one is %s), or build only berth (-packages berth)", s.opts.Arch, runtime.GOARCH)
	}
	bin, err := s.desktopBinary(ctx)
	if err != nil {
		return nil, err
	}
	depends, err := s.sharedLibDepends(ctx, bin)
	if err != nil {
		return nil, err
	}
	man, err := s.desktopManPage(ctx, bin)
	if err != nil {
		return nil, err
	}
	manPath, err := s.write("berth-desktop/berth-desktop.1.gz", gzipped(man), 0o644)
	if err != nil {
		return nil, err
	}
	var c files.Contents
	c = append(c, s.file(bin, "/usr/bin/berth-desktop", 0o755), s.file(manPath, "/usr/share/man/man1/berth-desktop.1.gz", 0o644))
	for _, f := range []struct{ src, dst string }{
		{"build/berth-desktop.desktop", "/usr/share/applications/berth-desktop.desktop"},
		{"build/berth-desktop.svg", "/usr/share/icons/hicolor/scalable/apps/berth-desktop.svg"},
		{"build/appicon.png", "/usr/share/icons/hicolor/256x256/apps/berth-desktop.png"},
	} {
		c = append(c, s.file(filepath.Join(s.opts.Root, f.src), f.dst, 0o644))
	}
	// Files under /etc are conffiles: an admin may disable the autostart
	// by editing it (Hidden=true), and dpkg keeps the edit.
	auto := s.file(filepath.Join(s.opts.Root, "systemd", "berth-desktop-autostart.desktop"), "/etc/xdg/autostart/berth-desktop.desktop", 0o644)
	auto.Type = files.TypeConfigNoReplace
	c = append(c, auto)

	docs, err := s.docs("berth-desktop", DesktopLintianOverrides)
	if err != nil {
		return nil, err
	}
	c = append(c, docs...)

	scripts, err := s.maintainerScripts("berth-desktop-scripts", "desktop-postinst", "", "desktop-postrm")
	if err != nil {
		return nil, err
	}
	return &spec{
		name:    "berth-desktop",
		section: "science",
		summary: "desktop app of Berth: launch astronomy software on this box",
		description: `berth-desktop is the desktop app of Berth. Its window shows the apps
berthd runs on this box, their resources and logs, the control-plane
link and the telemetry; its Astro Software menu launches the images of
the catalog as sessions (notebooks, CARTA, contributed web apps, and
desktop apps that open their windows on this display).

It talks to berthd (package berth) over its local API socket: the
desktop user must be a member of the berth group. It starts when a
desktop session starts (XDG autostart).`,
		depends:  append(depends, fmt.Sprintf("berth (= %s)", s.version.Debian())),
		contents: c,
		scripts:  scripts,
	}, nil
}

// desktopBinary builds berth-desktop for the build machine (cgo).
func (s *stage) desktopBinary(ctx context.Context) (string, error) {
	out := filepath.Join(s.dir, "bin-desktop", "berth-desktop")
	ldflags := "-s -w -X main.version=" + s.version.Upstream
	cmd := exec.CommandContext(ctx, s.opts.Go, "build", "-trimpath", "-buildmode=pie",
		"-tags", "desktop,production,webkit2_41", "-ldflags", ldflags, "-o", out, "./gui")
	cmd.Dir = s.opts.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1",
		// Debian's hardening flags (dpkg-buildflags), which lintian
		// checks for.
		"CGO_CFLAGS=-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -D_FORTIFY_SOURCE=2",
		"CGO_LDFLAGS=-Wl,-z,relro -Wl,-z,now")
	fmt.Fprintf(s.opts.Log, "go build ./gui (cgo, %s)\n", runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./gui: %v\n%s\n(berth-desktop needs gcc, pkg-config, libgtk-3-dev and libwebkit2gtk-4.1-dev)", err, b)
	}
	return out, nil
}

// desktopLibs are the libraries berth-desktop needs at the least, when
// dpkg-shlibdeps is not there to say exactly.
var desktopLibs = []string{"libc6 (>= 2.34)", "libgtk-3-0", "libwebkit2gtk-4.1-0"}

// sharedLibDepends computes the package's library dependencies the way
// dh_shlibdeps does (dpkg-shlibdeps, from dpkg-dev), so that they carry the
// minimal versions; without dpkg-shlibdeps it falls back to desktopLibs.
func (s *stage) sharedLibDepends(ctx context.Context, bin string) ([]string, error) {
	if _, err := exec.LookPath("dpkg-shlibdeps"); err != nil {
		fmt.Fprintf(s.opts.Log, "dpkg-shlibdeps not found (package dpkg-dev): Depends: %s\n", strings.Join(desktopLibs, ", "))
		return slices.Clone(desktopLibs), nil
	}
	dir := filepath.Join(s.dir, "shlibdeps")
	if err := os.MkdirAll(filepath.Join(dir, "debian"), 0o755); err != nil {
		return nil, err
	}
	control := "Source: berth\n\nPackage: berth-desktop\nArchitecture: any\n"
	if err := os.WriteFile(filepath.Join(dir, "debian", "control"), []byte(control), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "dpkg-shlibdeps", "-O", "-e"+bin)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		return nil, fmt.Errorf("dpkg-shlibdeps %s: %v\n%s", bin, err, msg)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "shlibs:Depends="); ok {
			var deps []string
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, d)
				}
			}
			return deps, nil
		}
	}
	return nil, fmt.Errorf("dpkg-shlibdeps printed no shlibs:Depends for %s: %s", bin, out)
}

// desktopManPage is berth-desktop(1), with its -h text.
func (s *stage) desktopManPage(ctx context.Context, bin string) ([]byte, error) {
	help, err := programHelp(ctx, bin, "berth-desktop", "-h", "-socket")
	if err != nil {
		return nil, err
	}
	return manPage{
		Name: "berth-desktop", Section: 1, Source: "berth " + s.version.Upstream, Manual: "User Commands", Date: s.mtime,
		Summary:  "the desktop app of Berth",
		Synopsis: ".B berth-desktop\n[\\fIflags\\fR]",
		Body: []manSection{
			{Heading: "Description", Text: `berth-desktop shows what berthd, the Berth edge daemon, runs on this box, in a window: the apps and sessions, their resources and logs, the control-plane link and the telemetry.

Its Astro Software menu lists the catalog's images by project (Astro Software, project, image:version); choosing one launches it as a session of the desktop user. Web sessions open in the default browser once they run; desktop-app sessions open their windows on this display. The Apps menu opens the running apps.

Only one berth-desktop runs per user: starting it again brings the window to the front. It starts with the desktop session (/etc/xdg/autostart/berth-desktop.desktop).

The desktop user must be a member of the berth group to reach berthd (adduser <user> berth, then log in again).`},
			{Heading: "Options", Verbatim: help},
			{Heading: "Environment", Text: `BERTH_SOCKET: the socket of berthd's local API (default /run/berth/berthd.sock).

DISPLAY and XAUTHORITY: the X display desktop-app sessions draw on, and the file holding its MIT-MAGIC-COOKIE-1.

WEBKIT_DISABLE_DMABUF_RENDERER: set to 1 automatically when the NVIDIA driver is loaded, where WebKit's DMA-BUF renderer shows a blank window.`},
			{Heading: "See also", Text: "berth(1), berthd(8)"},
		},
	}.render(), nil
}
