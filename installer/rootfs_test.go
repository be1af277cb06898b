package installer

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Debian root the system tests install into and boot: bookworm minbase
// plus systemd (to boot it), dbus (so the boot is clean) and adduser (the
// package's dependency). docker.io is not installed: berthd uses the host's
// Docker through the bind-mounted socket, and its absence shows that a
// missing docker group does not stop berthd.
const (
	rootfsSuite    = "bookworm"
	rootfsVariant  = "minbase"
	rootfsRevision = "1" // bump to force a rebuild of every cached root
)

var rootfsInclude = []string{"systemd", "dbus", "adduser"}

// rootfsCache is where built roots are kept between runs (CI starts empty).
func rootfsCache() string {
	if d := os.Getenv("BERTH_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/berth-test/rootfs"
}

// rootfsMirror is the Debian mirror mmdebstrap uses.
func rootfsMirror() string {
	if m := os.Getenv("BERTH_TEST_MIRROR"); m != "" {
		return m
	}
	return "http://deb.debian.org/debian"
}

// baseRootfs returns the cached root, building it with mmdebstrap the first
// time (about a minute). A lock serialises concurrent test binaries.
func baseRootfs(t *testing.T) string {
	t.Helper()
	key := sha256.Sum256([]byte(strings.Join([]string{rootfsRevision, rootfsSuite, rootfsVariant, strings.Join(rootfsInclude, ","), rootfsMirror()}, "|")))
	name := fmt.Sprintf("%s-%s-%s", rootfsSuite, rootfsVariant, hex.EncodeToString(key[:6]))
	cache := rootfsCache()
	dir := filepath.Join(cache, name)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	// Work copies of tests that were killed before their cleanup ran.
	if olds, _ := filepath.Glob(filepath.Join(filepath.Dir(cache), "work-*")); len(olds) > 0 {
		for _, o := range olds {
			if fi, err := os.Stat(o); err == nil && time.Since(fi.ModTime()) > 3*time.Hour {
				t.Logf("removing the stale work copy %s", o)
				os.RemoveAll(o)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		t.Logf("using the cached root %s", dir)
		return dir
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	os.RemoveAll(dir)
	start := time.Now()
	out, err := runCmd(15*time.Minute, nil, "mmdebstrap", "--quiet", "--variant="+rootfsVariant,
		"--include="+strings.Join(rootfsInclude, ","), rootfsSuite, tmp, rootfsMirror())
	if err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("mmdebstrap: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the root %s with mmdebstrap in %s", dir, time.Since(start).Round(time.Second))
	return dir
}

// copyRoot gives a test its own copy of the cached root; it is deleted
// when the test ends.
func copyRoot(t *testing.T, base string) string {
	t.Helper()
	parent, err := os.MkdirTemp(filepath.Dir(rootfsCache()), "work-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(parent); err != nil {
			t.Logf("removing %s: %v", parent, err)
		}
	})
	dir := filepath.Join(parent, "root")
	mustRun(t, 5*time.Minute, "cp", "-a", "--reflink=auto", base, dir)
	return dir
}

// snapshot lists every path under root (except volatile places), with its
// type and mode, to compare before install and after purge.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	skip := []string{"proc", "sys", "dev", "run", "tmp", "var/tmp", "var/log", "var/cache", "var/lib/apt", "var/lib/dpkg",
		"var/lib/systemd", "var/lib/dbus", "etc/machine-id", "etc/.pwd.lock", "etc/ld.so.cache", "home", "root", ".complete"}
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if slices.Contains(skip, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m[rel] = info.Mode().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// leftovers compares two snapshots; allowed are paths policy keeps.
func leftovers(before, after map[string]string, allowed ...string) []string {
	var diff []string
	for p, mode := range after {
		if slices.Contains(allowed, p) {
			continue
		}
		if b, ok := before[p]; !ok {
			diff = append(diff, "new: "+p+" "+mode)
		} else if b != mode {
			diff = append(diff, "changed: "+p+" "+b+" -> "+mode)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok && !slices.Contains(allowed, p) {
			diff = append(diff, "gone: "+p)
		}
	}
	slices.Sort(diff)
	return diff
}

// groupOf returns the members line of group name in root's /etc/group.
func groupOf(root, name string) (gid int, members string, ok bool) {
	f, err := os.Open(filepath.Join(root, "etc/group"))
	if err != nil {
		return 0, "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) == 4 && p[0] == name {
			gid, _ = strconv.Atoi(p[2])
			return gid, p[3], true
		}
	}
	return 0, "", false
}

// requireSystem skips unless the slow system tests can run here.
func requireSystem(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIP: -short: the system tests install and boot a Debian root")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the system tests need root (chroot, systemd-nspawn); run `sudo go test ./installer/` or `make test` as root")
	}
	needTools(t, append([]string{"mmdebstrap", "chroot", "cp"}, tools...)...)
}

// chroot runs a shell command inside root (no systemd running there).
func chroot(t *testing.T, root, script string) (string, error) {
	t.Helper()
	return runCmd(5*time.Minute, cleanEnv(), "chroot", root, "/bin/sh", "-ec", script)
}

func mustChroot(t *testing.T, root, script string) string {
	t.Helper()
	out, err := chroot(t, root, script)
	if err != nil {
		t.Fatalf("in the chroot: %s\n%v\n%s", script, err, out)
	}
	return out
}

func cleanEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive", "HOME=/root", "TERM=dumb", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
}

// copyInto copies host files into root/var/tmp (not /tmp: a booted
// container mounts a tmpfs there) and returns their paths inside.
func copyInto(t *testing.T, root string, files ...string) []string {
	t.Helper()
	var in []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join("/var/tmp", filepath.Base(f))
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
		in = append(in, dst)
	}
	return in
}

var errNoPID1 = errors.New("no container init found")

// containerInit finds the container's PID 1 (as seen from the host) among
// the descendants of the systemd-nspawn process.
func containerInit(nspawn int) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	parent := map[int]int{}
	var inits []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) == 2 && f[0] == "PPid:":
				parent[pid], _ = strconv.Atoi(f[1])
			case len(f) >= 3 && f[0] == "NSpid:" && f[len(f)-1] == "1":
				inits = append(inits, pid)
			}
		}
	}
	for _, pid := range inits {
		for p, n := parent[pid], 0; p > 1 && n < 10; p, n = parent[p], n+1 {
			if p == nspawn {
				return pid, nil
			}
		}
	}
	return 0, errNoPID1
}
