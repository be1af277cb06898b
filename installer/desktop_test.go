package installer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDesktopPackageMetadata checks berth-desktop's control fields, files,
// modes and what the shipped files say.
func TestDesktopPackageMetadata(t *testing.T) {
	needTools(t, "dpkg-deb")
	d1, _ := desktopDebs(t)
	if got, want := filepath.Base(d1), "berth-desktop_0.9.0+test1-1_"+mustDebArch(t)+".deb"; got != want {
		t.Errorf("package file %s, want %s", got, want)
	}
	field := func(name string) string { return debField(t, d1, name) }
	checkFields(t, d1, map[string]string{
		"Package":      "berth-desktop",
		"Version":      "0.9.0+test1-1",
		"Architecture": mustDebArch(t),
		"Section":      "science",
		"Priority":     "optional",
	})
	deps := strings.Split(field("Depends"), ", ")
	var names []string
	for _, d := range deps {
		names = append(names, strings.Fields(d)[0])
	}
	for _, want := range []string{"libgtk-3-0", "libwebkit2gtk-4.1-0", "libc6", "berth"} {
		if !slices.Contains(names, want) {
			t.Errorf("Depends %q lacks %s", field("Depends"), want)
		}
	}
	if !slices.Contains(deps, "berth (= 0.9.0+test1-1)") {
		t.Errorf("Depends %q: berth must be the same version, berth (= 0.9.0+test1-1)", field("Depends"))
	}

	ctl := t.TempDir()
	mustRun(t, 30*time.Second, "dpkg-deb", "-e", d1, ctl)
	if b, err := os.ReadFile(filepath.Join(ctl, "conffiles")); err != nil || strings.TrimSpace(string(b)) != "/etc/xdg/autostart/berth-desktop.desktop" {
		t.Errorf("conffiles = %q (%v), want just the autostart entry", b, err)
	}
	for _, s := range []string{"postinst", "postrm"} {
		p := filepath.Join(ctl, s)
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v; want an executable script", s, err)
			continue
		}
		if out, err := runCmd(10*time.Second, nil, "sh", "-n", p); err != nil {
			t.Errorf("%s: syntax error: %v\n%s", s, err, out)
		}
		b, _ := os.ReadFile(p)
		for _, w := range []string{"command -v update-desktop-database", "update-icon-caches"} {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s does not run %q guarded", s, w)
			}
		}
	}

	listing := mustRun(t, 30*time.Second, "dpkg-deb", "-c", d1)
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("odd dpkg-deb -c line %q", l)
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s", f[5], f[1])
		}
		got[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = f[0]
	}
	for p, mode := range map[string]string{
		"/usr/bin/berth-desktop":                                   "-rwxr-xr-x",
		"/usr/share/applications/berth-desktop.desktop":            "-rw-r--r--",
		"/usr/share/icons/hicolor/scalable/apps/berth-desktop.svg": "-rw-r--r--",
		"/usr/share/icons/hicolor/256x256/apps/berth-desktop.png":  "-rw-r--r--",
		"/etc/xdg/autostart/berth-desktop.desktop":                 "-rw-r--r--",
		"/usr/share/man/man1/berth-desktop.1.gz":                   "-rw-r--r--",
		"/usr/share/doc/berth-desktop/copyright":                   "-rw-r--r--",
		"/usr/share/doc/berth-desktop/changelog.Debian.gz":         "-rw-r--r--",
		"/usr/share/lintian/overrides/berth-desktop":               "-rw-r--r--",
	} {
		if got[p] != mode {
			t.Errorf("%s: %q, want %s", p, got[p], mode)
		}
	}

	root := extracted(t, d1)
	for src, dst := range map[string]string{
		"build/berth-desktop.desktop":             "usr/share/applications/berth-desktop.desktop",
		"systemd/berth-desktop-autostart.desktop": "etc/xdg/autostart/berth-desktop.desktop",
		"build/berth-desktop.svg":                 "usr/share/icons/hicolor/scalable/apps/berth-desktop.svg",
		"build/appicon.png":                       "usr/share/icons/hicolor/256x256/apps/berth-desktop.png",
	} {
		a, _ := os.ReadFile(filepath.Join(repoRoot(t), src))
		b, _ := os.ReadFile(filepath.Join(root, dst))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("/%s differs from %s", dst, src)
		}
	}
	if _, err := os.Stat("/usr/bin/desktop-file-validate"); err == nil {
		for _, f := range []string{"usr/share/applications/berth-desktop.desktop", "etc/xdg/autostart/berth-desktop.desktop"} {
			if out, err := runCmd(30*time.Second, nil, "desktop-file-validate", filepath.Join(root, f)); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("desktop-file-validate /%s: %v\n%s", f, err, out)
			}
		}
	} else {
		t.Log("desktop-file-validate not installed (desktop-file-utils): desktop entries not validated")
	}
	if out := mustRun(t, 10*time.Second, filepath.Join(root, "usr/bin/berth-desktop"), "--version"); strings.TrimSpace(out) != "berth-desktop 0.9.0+test1" {
		t.Errorf("berth-desktop --version = %q", out)
	}
	man := mustRun(t, 10*time.Second, "sh", "-c", "zcat "+filepath.Join(root, "usr/share/man/man1/berth-desktop.1.gz"))
	for _, w := range []string{".TH BERTH-DESKTOP 1", `\-socket`, "BERTH_SOCKET", "Astro Software", "berth group"} {
		if !strings.Contains(man, w) {
			t.Errorf("berth-desktop(1) lacks %q", w)
		}
	}
	ov, _ := os.ReadFile(filepath.Join(root, "usr/share/lintian/overrides/berth-desktop"))
	if got := strings.Split(strings.TrimSpace(string(ov)), "\n"); !slices.Equal(got, DesktopLintianOverrides) {
		t.Errorf("lintian overrides = %q, want %q", got, DesktopLintianOverrides)
	}
}

func TestDefaultPackagesFor(t *testing.T) {
	if got := DefaultPackagesFor(""); !slices.Equal(got, []string{"berth", "berth-desktop"}) {
		t.Errorf("native: %v", got)
	}
	other := "arm64"
	if mustDebArch(t) == "arm64" {
		other = "amd64"
	}
	if got := DefaultPackagesFor(other); !slices.Equal(got, []string{"berth"}) {
		t.Errorf("cross-building for %s: %v, want berth alone", other, got)
	}
}

// TestChrootDesktopInstallPurge installs berth and berth-desktop with apt,
// which fetches GTK and WebKitGTK from the Debian mirror, checks the files
// and that the program starts with them, then removes and purges both and
// checks that a second install and purge leave nothing behind.
func TestChrootDesktopInstallPurge(t *testing.T) {
	requireSystem(t)
	start := time.Now()
	v1, _ := debs(t)
	d1, _ := desktopDebs(t)
	root := copyRoot(t, baseRootfs(t))
	in := copyInto(t, root, v1, d1)
	// The chroot reaches the mirror with the host's resolver.
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		_ = os.Remove(filepath.Join(root, "etc/resolv.conf"))
		if err := os.WriteFile(filepath.Join(root, "etc/resolv.conf"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := chroot(t, root, "apt-get update -qq"); err != nil {
		t.Skipf("SKIP: the Debian mirror is not reachable from the chroot (%v):\n%s", err, out)
	}
	// The desktop database and icon cache tools, so the maintainer
	// scripts' guarded calls run.
	mustChroot(t, root, "apt-get install -y -qq --no-install-recommends desktop-file-utils libgtk-3-bin >/dev/null")
	install := "apt-get install -y -qq --no-install-recommends " + in[0] + " " + in[1] + " >/dev/null"
	mustChroot(t, root, install)
	t.Logf("installed berth-desktop and its dependencies in %s", time.Since(start).Round(time.Second))
	checkModes(t, root, map[string]os.FileMode{
		"usr/bin/berth-desktop":                                   0o755,
		"usr/share/applications/berth-desktop.desktop":            0o644,
		"usr/share/icons/hicolor/scalable/apps/berth-desktop.svg": 0o644,
		"usr/share/icons/hicolor/256x256/apps/berth-desktop.png":  0o644,
		"etc/xdg/autostart/berth-desktop.desktop":                 0o644,
		"usr/share/man/man1/berth-desktop.1.gz":                   0o644,
	})
	// The dependencies are enough for the program to load.
	if out := mustChroot(t, root, "berth-desktop --version"); strings.TrimSpace(out) != "berth-desktop 0.9.0+test1" {
		t.Errorf("berth-desktop --version in the chroot = %q", out)
	}
	if out := mustChroot(t, root, "ldd /usr/bin/berth-desktop"); strings.Contains(out, "not found") {
		t.Errorf("missing libraries:\n%s", out)
	}
	if out := mustChroot(t, root, "grep -l berth-desktop /usr/share/applications/mimeinfo.cache /usr/share/icons/hicolor/icon-theme.cache || true"); !strings.Contains(out, "icon-theme.cache") {
		t.Errorf("the icon cache does not list berth-desktop's icons: %q", out)
	}
	if out := mustChroot(t, root, "dpkg-query -W -f='${Conffiles}' berth-desktop"); !strings.Contains(out, "/etc/xdg/autostart/berth-desktop.desktop") {
		t.Errorf("the autostart entry is not a conffile: %q", out)
	}

	mustChroot(t, root, "apt-get remove -y -qq berth-desktop >/dev/null")
	for _, p := range []string{"usr/bin/berth-desktop", "usr/share/applications/berth-desktop.desktop", "usr/share/icons/hicolor/scalable/apps/berth-desktop.svg"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s is still there after remove", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/xdg/autostart/berth-desktop.desktop")); err != nil {
		t.Errorf("remove must keep the conffile /etc/xdg/autostart/berth-desktop.desktop: %v", err)
	}
	mustChroot(t, root, "apt-get purge -y -qq berth-desktop berth >/dev/null")
	if _, err := os.Lstat(filepath.Join(root, "etc/xdg/autostart/berth-desktop.desktop")); err == nil {
		t.Error("/etc/xdg/autostart/berth-desktop.desktop is still there after purge")
	}

	// With the dependencies now installed, install and purge again:
	// nothing of ours may be left.
	before := snapshot(t, root)
	mustChroot(t, root, install)
	mustChroot(t, root, "apt-get purge -y -qq berth-desktop berth >/dev/null")
	if diff := leftovers(before, snapshot(t, root), "etc/group", "etc/group-", "etc/gshadow", "etc/gshadow-"); len(diff) > 0 {
		t.Errorf("install + purge left differences:\n%s", strings.Join(diff, "\n"))
	}
	t.Logf("desktop chroot install/remove/purge took %s", time.Since(start).Round(time.Second))
}
