package installer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/berthdtest"
)

// The two builds the tests install: v1, then v2 as an upgrade whose default
// config changed (so dpkg must choose between the admin's edit and the new
// default).
var (
	testV1 = Version{Upstream: "0.9.0+test1", Revision: "1"}
	testV2 = Version{Upstream: "0.9.0+test2", Revision: "1"}
	// v2ConfigMarker is appended to v2's default config.
	v2ConfigMarker = "# changed in 0.9.0+test2\n"
)

var (
	buildOnce sync.Once
	built     struct {
		dir    string
		v1, v2 string
		// d1, d2: berth-desktop of the same versions.
		d1, d2 string
		err    error
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func repoRoot(t testing.TB) string { return berthdtest.RepoRoot(t) }

// debs builds the v1 and v2 packages (berth and berth-desktop) once per
// test binary and returns berth's.
func debs(t testing.TB) (v1, v2 string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found: cannot build the packages")
	}
	buildOnce.Do(func() {
		root := repoRoot(t)
		dir, err := os.MkdirTemp("", "berth-debs-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		// lintian runs as nobody and must read the packages.
		if err := os.Chmod(dir, 0o755); err != nil {
			built.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cfg, err := embeddedFile("config.toml")
		if err != nil {
			built.err = err
			return
		}
		mtime := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		// berth-desktop needs the GTK and WebKitGTK headers (cgo); without
		// them only berth is built and the desktop tests skip.
		pkgs := DefaultPackages
		if err := exec.Command("pkg-config", "--exists", "gtk+-3.0", "webkit2gtk-4.1").Run(); err != nil {
			pkgs = []string{"berth"}
		}
		for _, b := range []struct {
			v        Version
			cfg      []byte
			out, gui *string
		}{
			{testV1, cfg, &built.v1, &built.d1},
			{testV2, append(append([]byte{}, cfg...), v2ConfigMarker...), &built.v2, &built.d2},
		} {
			paths, err := Build(ctx, Options{Root: root, OutDir: dir, Version: b.v, ConfigTOML: b.cfg, MTime: mtime, Packages: pkgs})
			if err != nil {
				built.err = fmt.Errorf("build %s: %w", b.v.Debian(), err)
				return
			}
			if len(paths) != len(pkgs) {
				built.err = fmt.Errorf("build %s: %d packages, want %v: %v", b.v.Debian(), len(paths), pkgs, paths)
				return
			}
			*b.out = paths[0]
			if len(paths) > 1 {
				*b.gui = paths[1]
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.v1, built.v2
}

// desktopDebs returns the berth-desktop packages of debs' two versions.
func desktopDebs(t testing.TB) (d1, d2 string) {
	t.Helper()
	debs(t)
	if built.d1 == "" {
		t.Skip("SKIP: berth-desktop was not built: the GTK 3 / WebKitGTK 4.1 headers are missing (make test-deps installs libgtk-3-dev and libwebkit2gtk-4.1-dev)")
	}
	return built.d1, built.d2
}

// extracted unpacks a .deb's data into a fresh directory.
func extracted(t testing.TB, deb string) string {
	t.Helper()
	needTools(t, "dpkg-deb")
	dir := t.TempDir()
	mustRun(t, 30*time.Second, "dpkg-deb", "-x", deb, dir)
	return dir
}

// debField is the control field name of the package file deb.
func debField(t testing.TB, deb, name string) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, 30*time.Second, "dpkg-deb", "-f", deb, name))
}

// checkFields checks control fields of the package file deb.
func checkFields(t testing.TB, deb string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if got := debField(t, deb, name); got != w {
			t.Errorf("%s: %q, want %q", name, got, w)
		}
	}
}

// checkModes checks that the files below root have the given modes and
// belong to root:root.
func checkModes(t testing.TB, root string, want map[string]os.FileMode) {
	t.Helper()
	for p, mode := range want {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Errorf("after install: %v", err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != mode || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("/%s: mode %v uid %d gid %d, want %v root:root", p, fi.Mode().Perm(), st.Uid, st.Gid, mode)
		}
	}
}

// needTools skips the test when a command is missing.
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Skipf("SKIP: %s not installed (make test-deps installs them)", strings.Join(missing, ", "))
	}
}

// runCmd runs a command with a deadline and returns its combined output.
func runCmd(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = env
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	return out.String(), err
}

func mustRun(t testing.TB, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := runCmd(timeout, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}
