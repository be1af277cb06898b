package installer

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVersionFromDescribe(t *testing.T) {
	for _, c := range []struct {
		describe string
		count    int
		hash     string
		dirty    bool
		want     string
	}{
		{"v0.1.0-0-g1a2b3c4d5e", 0, "", false, "0.1.0-1"},
		{"v0.1.0-5-g1a2b3c4d5e", 0, "", false, "0.1.0+git5.1a2b3c4d5e-1"},
		{"v0.1.0-5-g1a2b3c4d5e", 0, "", true, "0.1.0+git5.1a2b3c4d5e.dirty-1"},
		{"v0.1.0-0-g1a2b3c4d5e", 0, "", true, "0.1.0+dirty-1"},
		{"v0.2.0-rc1-0-g1a2b3c4d5e", 0, "", false, "0.2.0~rc1-1"},
		{"v0.2.0-rc1-3-g1a2b3c4d5e", 0, "", false, "0.2.0~rc1+git3.1a2b3c4d5e-1"},
		{"1.4.2-0-gabc", 0, "", false, "1.4.2-1"},
		{"", 42, "1a2b3c4d5e", false, "0.0.0+git42.1a2b3c4d5e-1"},
		{"", 42, "1a2b3c4d5e", true, "0.0.0+git42.1a2b3c4d5e.dirty-1"},
	} {
		v, err := VersionFromDescribe(c.describe, c.count, c.hash, c.dirty)
		if err != nil {
			t.Errorf("VersionFromDescribe(%q, %d, %q, %v): %v", c.describe, c.count, c.hash, c.dirty, err)
			continue
		}
		if got := v.Debian(); got != c.want {
			t.Errorf("VersionFromDescribe(%q, %d, %q, %v) = %s, want %s", c.describe, c.count, c.hash, c.dirty, got, c.want)
		}
	}
	for _, bad := range []string{"release-1", "v-0-gabc", "vX.Y-1-gabc"} {
		if v, err := VersionFromDescribe(bad, 0, "", false); err == nil {
			t.Errorf("VersionFromDescribe(%q) = %s, want an error", bad, v.Debian())
		}
	}
	if _, err := VersionFromDescribe("", 0, "", false); err == nil {
		t.Error("no tag and no hash: want an error")
	}
}

// TestVersionsSortForUpgrades checks with dpkg itself that each build is an
// upgrade over the one before.
func TestVersionsSortForUpgrades(t *testing.T) {
	needTools(t, "dpkg")
	ordered := []string{
		"0.0.0+git7.aaaaaaaaaa-1",
		"0.0.0+git12.0000000000-1",
		"0.1.0-1",
		"0.1.0+git1.ffffffffff-1",
		"0.1.0+git2.0000000000-1",
		"0.1.0+git10.0000000000-1",
		"0.2.0~rc1-1",
		"0.2.0~rc1+git3.aaaaaaaaaa-1",
		"0.2.0-1",
	}
	for i := 1; i < len(ordered); i++ {
		if out, err := runCmd(10*time.Second, nil, "dpkg", "--compare-versions", ordered[i-1], "lt", ordered[i]); err != nil {
			t.Errorf("dpkg says %s is not older than %s (%v %s)", ordered[i-1], ordered[i], err, out)
		}
	}
}

func TestGitVersionOfThisTree(t *testing.T) {
	needTools(t, "git")
	v, err := GitVersion(context.Background(), repoRoot(t))
	if err != nil {
		t.Skipf("SKIP: not a git checkout: %v", err)
	}
	if err := v.Validate(); err != nil {
		t.Fatalf("GitVersion = %+v: %v", v, err)
	}
	t.Logf("make deb would build version %s", v.Debian())
}

func TestPackageMetadata(t *testing.T) {
	needTools(t, "dpkg-deb")
	v1, _ := debs(t)
	if got, want := filepath.Base(v1), "berth_0.9.0+test1-1_"+mustDebArch(t)+".deb"; got != want {
		t.Errorf("package file %s, want %s", got, want)
	}
	field := func(name string) string { return debField(t, v1, name) }
	checkFields(t, v1, map[string]string{
		"Package":      "berth",
		"Version":      "0.9.0+test1-1",
		"Architecture": mustDebArch(t),
		"Section":      "admin",
		"Priority":     "optional",
		"Depends":      "adduser",
		"Recommends":   "docker.io | docker-ce",
	})
	if field("Maintainer") == "" || !strings.Contains(field("Description"), "berthd") {
		t.Errorf("Maintainer or Description missing")
	}

	// Control files: the conffile and the maintainer scripts.
	ctl := t.TempDir()
	mustRun(t, 30*time.Second, "dpkg-deb", "-e", v1, ctl)
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/berth/config.toml" {
		t.Errorf("conffiles = %q (%v), want just /etc/berth/config.toml", conffiles, err)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(ctl, s)
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, mode %v; want an executable script", s, err, fi.Mode())
			continue
		}
		if out, err := runCmd(10*time.Second, nil, "sh", "-n", p); err != nil {
			t.Errorf("%s: syntax error: %v\n%s", s, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(ctl, "preinst")); err == nil {
		t.Error("unexpected preinst")
	}

	// Files, modes and owners, as `dpkg-deb -c` lists them.
	listing := mustRun(t, 30*time.Second, "dpkg-deb", "-c", v1)
	type entry struct{ mode, owner string }
	got := map[string]entry{}
	for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("odd dpkg-deb -c line %q", l)
		}
		got[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = entry{f[0], f[1]}
	}
	want := map[string]string{
		"/usr/sbin/berthd":                             "-rwxr-xr-x",
		"/usr/bin/berth":                               "-rwxr-xr-x",
		"/usr/lib/systemd/system/berthd.service":       "-rw-r--r--",
		"/etc/berth":                                   "drwxr-xr-x",
		"/etc/berth/config.toml":                       "-rw-r-----",
		"/usr/share/bash-completion/completions/berth": "-rw-r--r--",
		"/usr/share/man/man8/berthd.8.gz":              "-rw-r--r--",
		"/usr/share/man/man1/berth.1.gz":               "-rw-r--r--",
		"/usr/share/doc/berth/copyright":               "-rw-r--r--",
		"/usr/share/doc/berth/changelog.Debian.gz":     "-rw-r--r--",
		"/usr/share/doc/berth/operations.md.gz":        "-rw-r--r--",
		"/usr/share/lintian/overrides/berth":           "-rw-r--r--",
	}
	for p, mode := range want {
		e, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s is missing from the package", p)
		case e.mode != mode || e.owner != "root/root":
			t.Errorf("%s: %s %s, want %s root/root", p, e.mode, e.owner, mode)
		}
	}
	for p, e := range got {
		if e.owner != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", p, e.owner)
		}
		// State and runtime directories are systemd's (StateDirectory=,
		// RuntimeDirectory=): shipping them would let dpkg delete state.
		if strings.HasPrefix(p, "/var/") || strings.HasPrefix(p, "/run") {
			t.Errorf("the package ships %s; state and runtime directories belong to systemd", p)
		}
	}

	// What the generated files say.
	root := extracted(t, v1)
	if out := mustRun(t, 10*time.Second, filepath.Join(root, "usr/sbin/berthd"), "--version"); strings.TrimSpace(out) != "berthd 0.9.0+test1" {
		t.Errorf("berthd --version = %q", out)
	}
	comp, _ := os.ReadFile(filepath.Join(root, "usr/share/bash-completion/completions/berth"))
	if !strings.Contains(string(comp), "complete -o default -F __start_berth berth") {
		t.Errorf("bash completion does not register a completion for berth:\n%.300s", comp)
	}
	man8 := mustRun(t, 10*time.Second, "sh", "-c", "zcat "+filepath.Join(root, "usr/share/man/man8/berthd.8.gz"))
	for _, w := range []string{".TH BERTHD 8", `\-state\-dir`, `\-nuvla\-endpoint`, "NUVLAEDGE_UUID", "/var/lib/berth/state.db"} {
		if !strings.Contains(man8, w) {
			t.Errorf("berthd(8) lacks %q", w)
		}
	}
	man1 := mustRun(t, 10*time.Second, "sh", "-c", "zcat "+filepath.Join(root, "usr/share/man/man1/berth.1.gz"))
	for _, w := range []string{".TH BERTH 1", ".SS berth status", ".SS berth apps", "permission denied", `\-\-socket`} {
		if !strings.Contains(man1, w) {
			t.Errorf("berth(1) lacks %q", w)
		}
	}
	ov, _ := os.ReadFile(filepath.Join(root, "usr/share/lintian/overrides/berth"))
	if got := strings.Split(strings.TrimSpace(string(ov)), "\n"); !slices.Equal(got, BerthLintianOverrides) {
		t.Errorf("lintian overrides = %q, want %q", got, BerthLintianOverrides)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/berthd.service"))
	src, _ := os.ReadFile(filepath.Join(repoRoot(t), "systemd/berthd.service"))
	if string(unit) != string(src) {
		t.Error("the packaged unit differs from systemd/berthd.service")
	}
}

func mustDebArch(t testing.TB) string {
	a, err := DebianArch(runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestLintian: the packages have no lintian errors or warnings, and every
// override is still needed.
func TestLintian(t *testing.T) {
	needTools(t, "lintian")
	v1, _ := debs(t)
	pkgs := []string{v1}
	if built.d1 != "" {
		pkgs = append(pkgs, built.d1)
	}
	// --info shows unused-override and mismatched-override (info tags);
	// with --show-overrides, overridden tags would count for --fail-on.
	args := append([]string{"--fail-on", "error,warning", "--info"}, pkgs...)
	name := "lintian"
	if os.Geteuid() == 0 {
		// lintian refuses to be trusted as root; run it as nobody.
		needTools(t, "runuser")
		name, args = "runuser", append([]string{"-u", "nobody", "--", "lintian"}, args...)
	}
	out, err := runCmd(5*time.Minute, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/tmp"}, name, args...)
	t.Logf("lintian --fail-on error,warning --info:\n%s", out)
	if err != nil {
		t.Fatalf("lintian failed: %v", err)
	}
	for _, tag := range []string{"unused-override", "mismatched-override"} {
		if strings.Contains(out, tag) {
			t.Errorf("lintian reports %s: fix BerthLintianOverrides or DesktopLintianOverrides", tag)
		}
	}
}

// unitForHost writes the packaged unit with ExecStart pointing at the
// extracted berthd (systemd-analyze checks that the binary exists) and
// returns its path and a MANPATH holding the packaged man pages (it also
// checks Documentation=man: entries).
func unitForHost(t *testing.T) (unit, manpath string) {
	v1, _ := debs(t)
	root := extracted(t, v1)
	b, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/berthd.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "ExecStart=/usr/sbin/berthd ") {
		t.Fatal("the unit's ExecStart is not /usr/sbin/berthd")
	}
	s := strings.ReplaceAll(string(b), "ExecStart=/usr/sbin/berthd ", "ExecStart="+filepath.Join(root, "usr/sbin/berthd")+" ")
	dir := t.TempDir()
	unit = filepath.Join(dir, "berthd.service")
	if err := os.WriteFile(unit, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return unit, filepath.Join(root, "usr/share/man")
}

func TestUnitVerify(t *testing.T) {
	needTools(t, "systemd-analyze", "man")
	unit, manpath := unitForHost(t)
	out, err := runCmd(time.Minute, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "MANPATH=" + manpath, "LANG=C.UTF-8", "SYSTEMD_LOG_COLOR=0"},
		"systemd-analyze", "verify", unit)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify berthd.service must print nothing; got (%v):\n%s", err, out)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for berthd\.service: ([0-9.]+)`)

// TestUnitSecurity: the exposure score stays at or below 3.0 and
// docs/operations.md states the current one.
func TestUnitSecurity(t *testing.T) {
	needTools(t, "systemd-analyze")
	unit, _ := unitForHost(t)
	out, err := runCmd(time.Minute, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_COLORS=0"},
		"systemd-analyze", "security", "--offline=yes", "--no-pager", unit)
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		if strings.Contains(out, "Unknown option") || strings.Contains(out, "unrecognized option") {
			t.Skipf("SKIP: this systemd-analyze has no --offline (needs systemd >= 250): %s", out)
		}
		t.Fatalf("no exposure score in systemd-analyze security output (%v):\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("exposure score %.1f", score)
	if score > 3.0 {
		t.Errorf("exposure score %.1f > 3.0:\n%s", score, out)
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	dm := regexp.MustCompile(`exposure score of \*\*([0-9.]+)\*\*`).FindSubmatch(doc)
	switch {
	case dm == nil:
		t.Errorf("docs/operations.md does not state the exposure score (\"exposure score of **%s**\")", m[1])
	case string(dm[1]) != m[1] && systemdVersion() == 252:
		// Other systemd versions weigh the options differently.
		t.Errorf("docs/operations.md says the exposure score is %s; systemd-analyze says %s", dm[1], m[1])
	}
}

func systemdVersion() int {
	out, err := exec.Command("systemd-analyze", "--version").Output()
	if err != nil {
		return 0
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// TestDefaultConfig: the shipped config is all commented defaults; with
// every setting uncommented it is still a config berthd accepts, and its
// defaults are the ones berthd -h states.
func TestDefaultConfig(t *testing.T) {
	v1, _ := debs(t)
	root := extracted(t, v1)
	cfg, err := os.ReadFile(filepath.Join(root, "etc/berth/config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	berthd := filepath.Join(root, "usr/sbin/berthd")
	help, _ := runCmd(10*time.Second, nil, berthd, "-h")

	var uncommented []string
	keyLine := regexp.MustCompile(`^#([a-z-]+) = (.*)$`)
	for _, l := range strings.Split(string(cfg), "\n") {
		if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") && !strings.HasPrefix(s, "[") {
			t.Errorf("the shipped config sets %q; it must only show commented defaults", s)
		}
		m := keyLine.FindStringSubmatch(l)
		switch {
		case m == nil:
			uncommented = append(uncommented, l)
		case slices.Contains([]string{"endpoint", "nuvlabox-id", "api-key", "api-secret"}, m[1]):
			// Examples, not defaults: setting them leaves standalone mode.
			uncommented = append(uncommented, l)
		default:
			uncommented = append(uncommented, strings.TrimPrefix(l, "#"))
		}
	}
	for _, d := range []string{`#state-dir = "/var/lib/berth"`, `#socket = "/run/berth/berthd.sock"`, `#listen = "127.0.0.1:8484"`} {
		if !strings.Contains(string(cfg), d+"\n") {
			t.Errorf("config lacks %s", d)
		}
		v := strings.Trim(strings.SplitN(d, " = ", 2)[1], `"`)
		if !strings.Contains(help, "default "+v) {
			t.Errorf("config says %s but berthd -h does not give %s as a default", d, v)
		}
	}

	// Start berthd with it (private paths, no Docker): it must get past
	// parsing the config.
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(strings.Join(uncommented, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthd, "--config", path, "--state-dir", filepath.Join(dir, "state"),
		"--socket", filepath.Join(dir, "berthd.sock"), "--web-listen", "off", "--docker-host", "unix://"+filepath.Join(dir, "no-docker.sock"))
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), `msg="starting berthd"`) {
			return // the config was accepted
		}
	}
	t.Fatalf("berthd did not accept the uncommented default config:\n%s\nconfig:\n%s", strings.Join(lines, "\n"), strings.Join(uncommented, "\n"))
}
