package installer

// System tests: the package installed into a Debian bookworm root, first
// with dpkg in a chroot (what an image build does), then in the same kind of
// root booted with systemd-nspawn, where berthd.service runs under a real
// systemd with the host's Docker socket bound in. They need root,
// mmdebstrap and systemd-nspawn (make test-deps installs them), take about
// a minute with a cached root, and skip with a message otherwise.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/berthdtest"
)

// TestChrootInstallUpgradePurge installs, upgrades, removes and purges the
// package with no systemd running, and checks what an operator would: the
// files and their modes, the group, the conffile kept across an upgrade,
// and that purge leaves nothing behind but the berth group.
func TestChrootInstallUpgradePurge(t *testing.T) {
	requireSystem(t)
	start := time.Now()
	v1, v2 := debs(t)
	root := copyRoot(t, baseRootfs(t))
	in := copyInto(t, root, v1, v2)
	before := snapshot(t, root)

	// Install with apt, as an operator would; --no-install-recommends
	// because the root has no package lists to fetch docker.io from.
	mustChroot(t, root, "apt-get install -y --no-install-recommends "+in[0])
	checkModes(t, root, map[string]os.FileMode{
		"usr/sbin/berthd":                             0o755,
		"usr/bin/berth":                               0o755,
		"usr/lib/systemd/system/berthd.service":       0o644,
		"etc/berth/config.toml":                       0o640,
		"usr/share/bash-completion/completions/berth": 0o644,
		"usr/share/man/man8/berthd.8.gz":              0o644,
	})
	gid, _, ok := groupOf(root, "berth")
	if !ok || gid >= 1000 || gid == 0 {
		t.Errorf("group berth: ok=%v gid=%d, want a system group", ok, gid)
	}
	if out := mustChroot(t, root, "dpkg-query -W -f='${Conffiles}' berth"); !strings.Contains(out, "/etc/berth/config.toml") {
		t.Errorf("dpkg does not list /etc/berth/config.toml as a conffile: %q", out)
	}
	if l, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/berthd.service")); err != nil || !strings.HasSuffix(l, "/systemd/system/berthd.service") {
		t.Errorf("berthd.service is not enabled (multi-user.target.wants link: %q, %v)", l, err)
	}
	if out := mustChroot(t, root, "berthd --version"); strings.TrimSpace(out) != "berthd 0.9.0+test1" {
		t.Errorf("berthd --version = %q", out)
	}
	// A second configure (dpkg-reconfigure, or a re-install) must not fail
	// on the existing group.
	mustChroot(t, root, "dpkg --force-confdef --force-confold -i "+in[0])

	// The admin edits the config; the upgrade's default config changed too.
	mustChroot(t, root, `sed -i 's/^#log-level = "info"/log-level = "debug"/' /etc/berth/config.toml`)
	// Some state, as berthd would have left it.
	mustChroot(t, root, "mkdir -p -m 0700 /var/lib/berth && echo state > /var/lib/berth/state.db")
	mustChroot(t, root, "apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "+in[1])
	if out := mustChroot(t, root, "dpkg-query -W -f='${Version}' berth"); out != "0.9.0+test2-1" {
		t.Errorf("after upgrade, version %q", out)
	}
	if cfg, _ := os.ReadFile(filepath.Join(root, "etc/berth/config.toml")); !strings.Contains(string(cfg), "\nlog-level = \"debug\"\n") {
		t.Errorf("the upgrade lost the edited config:\n%s", cfg)
	}
	if dist, err := os.ReadFile(filepath.Join(root, "etc/berth/config.toml.dpkg-dist")); err != nil || !strings.Contains(string(dist), v2ConfigMarker) {
		t.Errorf("the new default config is not next to the kept one as config.toml.dpkg-dist (%v)", err)
	}

	// Remove: programs go, config and state stay.
	mustChroot(t, root, "apt-get remove -y berth")
	for _, p := range []string{"usr/sbin/berthd", "usr/bin/berth", "usr/lib/systemd/system/berthd.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s is still there after remove", p)
		}
	}
	for _, p := range []string{"etc/berth/config.toml", "var/lib/berth/state.db"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("remove must keep /%s: %v", p, err)
		}
	}
	if out := mustChroot(t, root, "dpkg-query -W -f='${db:Status-Abbrev}' berth"); strings.TrimSpace(out) != "rc" {
		t.Errorf("after remove, dpkg status %q, want rc", out)
	}

	// Purge: nothing left but the group (Debian keeps system groups).
	mustChroot(t, root, "apt-get purge -y berth")
	for _, p := range []string{"etc/berth", "var/lib/berth", "etc/systemd/system/multi-user.target.wants/berthd.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s is still there after purge", p)
		}
	}
	if _, _, ok := groupOf(root, "berth"); !ok {
		t.Error("purge removed the berth group; Debian keeps system groups")
	}
	// /etc/group, gshadow and their backups change with the group.
	if diff := leftovers(before, snapshot(t, root), "etc/group", "etc/group-", "etc/gshadow", "etc/gshadow-"); len(diff) > 0 {
		t.Errorf("install + purge left differences:\n%s", strings.Join(diff, "\n"))
	}
	t.Logf("chroot install/upgrade/remove/purge took %s", time.Since(start).Round(time.Second))
}

// TestServiceUnderSystemd boots a Debian root with systemd-nspawn, installs
// the package into the running system and checks the service as an operator
// would: started on install through READY=1 with a STATUS= text, a socket
// the berth group may use and others may not, journald priorities, a restart
// after kill -9, a restart by the watchdog when the main loop hangs, a
// restart on upgrade that keeps an edited config, stop on remove, and
// nothing left after purge.
func TestServiceUnderSystemd(t *testing.T) {
	requireSystem(t, "systemd-nspawn", "nsenter", "timeout")
	if fi, err := os.Stat("/var/run/docker.sock"); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Skip("SKIP: no Docker socket at /var/run/docker.sock (make docker starts Docker)")
	}
	start := time.Now()
	v1, v2 := debs(t)
	root := copyRoot(t, baseRootfs(t))
	in := copyInto(t, root, v1, v2)
	// Two local users: alice will be in the berth group, bob not.
	mustChroot(t, root, "useradd -m alice && useradd -m bob")
	before := snapshot(t, root)

	booting := time.Now()
	m := boot(t, root)
	t.Logf("booted in %s", time.Since(booting).Round(100*time.Millisecond))

	// Install into the running system: postinst enables and starts berthd,
	// and deb-systemd-invoke returns once berthd sent READY=1.
	m.must("apt-get install -y --no-install-recommends " + in[0])
	if got := m.prop("ActiveState"); got != "active" {
		t.Fatalf("berthd is %s right after install, want active\n%s", got, m.status())
	}
	if got := m.prop("UnitFileState"); got != "enabled" {
		t.Errorf("berthd.service is %s, want enabled", got)
	}
	for prop, want := range map[string]string{"Type": "notify", "Restart": "on-failure", "WatchdogUSec": "1min", "NotifyAccess": "main"} {
		if got := m.prop(prop); got != want {
			t.Errorf("berthd.service %s=%s, want %s", prop, got, want)
		}
	}
	status := m.status()
	if !strings.Contains(status, "Status: \"standalone") || !strings.Contains(status, "active (running)") {
		t.Errorf("systemctl status shows no STATUS text from berthd:\n%s", status)
	}
	// No docker.io in this root, so no docker group: berthd must not care.
	if out, err := m.sh("getent group docker"); err == nil {
		t.Errorf("the test root has a docker group (%s): the missing-group case is not tested", strings.TrimSpace(out))
	}
	if out := m.must("stat -c '%a %U %G %F' /run/berth/berthd.sock /run/berth /var/lib/berth /var/lib/berth/state.db"); !strings.Contains(out, "660 root berth socket\n755 root root directory\n700 root root directory\n600 root root regular file") {
		t.Errorf("socket, runtime and state directories:\n%s", out)
	}

	// Journald: lines arrive with their priority, without the <N> prefix.
	entries := m.journal()
	if e := findEntry(entries, "local API ready", 0); e == nil || e.priority != "6" {
		t.Errorf("journal has no info-priority (6) \"local API ready\" entry from berthd: %+v", e)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.message, "<") {
			t.Errorf("a journal message kept its priority prefix: %q", e.message)
		}
	}

	// The local API: root and members of berth may, others may not.
	if out := m.must("berth status"); !strings.Contains(out, "Docker:  connected") || !strings.Contains(out, "Mode:    standalone") {
		t.Errorf("berth status as root:\n%s", out)
	}
	m.must("adduser --quiet alice berth")
	if out, err := m.sh("setpriv --reuid=alice --regid=alice --init-groups berth status"); err != nil || !strings.Contains(out, "Mode:    standalone") {
		t.Errorf("berth status as alice (in group berth) failed: %v\n%s", err, out)
	}
	out, err := m.sh("setpriv --reuid=bob --regid=bob --init-groups berth status")
	if err == nil || !strings.Contains(out, "permission denied") || !strings.Contains(out, "berth group") {
		t.Errorf("berth status as bob (not in group berth) must fail with permission denied and a hint; got %v\n%s", err, out)
	}

	// kill -9: Restart=on-failure brings berthd back.
	pid, restarts := m.prop("MainPID"), m.propInt("NRestarts")
	m.must("kill -9 " + pid)
	m.waitFor(30*time.Second, "berthd restarted after kill -9", func() bool {
		return m.prop("ActiveState") == "active" && m.prop("MainPID") != pid && m.prop("MainPID") != "0" && m.propInt("NRestarts") > restarts
	})
	if e := findEntry(m.journal(), "Main process exited, code=killed, status=9/KILL", 0); e == nil {
		t.Error("the journal does not show berthd killed by SIGKILL")
	}
	m.must("berth status >/dev/null")

	// Watchdog. First the control: with a 3 s watchdog and a healthy loop,
	// berthd keeps running.
	m.must(`mkdir -p /etc/systemd/system/berthd.service.d
printf '[Service]\nWatchdogSec=3s\nRestartSec=1s\n' > /etc/systemd/system/berthd.service.d/90-test-watchdog.conf
systemctl daemon-reload && systemctl restart berthd`)
	pid, restarts = m.prop("MainPID"), m.propInt("NRestarts")
	time.Sleep(8 * time.Second)
	if m.prop("MainPID") != pid || m.propInt("NRestarts") != restarts || m.prop("ActiveState") != "active" {
		t.Fatalf("with WatchdogSec=3s and a healthy main loop berthd was restarted:\n%s", m.status())
	}
	// Then a hung main loop (BERTH_TEST_HANG=1 stops the pings).
	m.must(`printf '[Service]\nEnvironment=BERTH_TEST_HANG=1\n' > /etc/systemd/system/berthd.service.d/91-test-hang.conf
systemctl daemon-reload && systemctl restart berthd`)
	pid, restarts = m.prop("MainPID"), m.propInt("NRestarts")
	since := m.now()
	m.waitFor(40*time.Second, "the watchdog restarts a hung berthd", func() bool {
		return m.propInt("NRestarts") > restarts && m.prop("MainPID") != pid
	})
	if e := findEntry(m.journalSince(since), "Watchdog timeout", 0); e == nil {
		t.Error("the journal does not show a watchdog timeout for berthd")
	}
	m.must(`rm -r /etc/systemd/system/berthd.service.d && systemctl daemon-reload && systemctl reset-failed berthd; systemctl restart berthd`)
	if got := m.prop("ActiveState"); got != "active" {
		t.Fatalf("berthd did not come back without the test drop-ins: %s\n%s", got, m.status())
	}

	// Upgrade with an edited config: kept, and berthd restarted on the new
	// version with it (log-level debug shows as priority 7).
	m.must(`sed -i 's/^#log-level = "info"/log-level = "debug"/' /etc/berth/config.toml`)
	pid = m.prop("MainPID")
	since = m.now()
	m.must("apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold " + in[1])
	if m.prop("ActiveState") != "active" || m.prop("MainPID") == pid {
		t.Errorf("berthd was not restarted by the upgrade (MainPID %s -> %s)\n%s", pid, m.prop("MainPID"), m.status())
	}
	if out := m.must("berth version"); !strings.Contains(out, "berthd 0.9.0+test2") {
		t.Errorf("after the upgrade berth version says:\n%s", out)
	}
	if out := m.must("cat /etc/berth/config.toml"); !strings.Contains(out, "\nlog-level = \"debug\"\n") {
		t.Errorf("the upgrade lost the edited config:\n%s", out)
	}
	m.waitFor(10*time.Second, "a debug-priority line from the upgraded berthd", func() bool {
		e := findEntry(m.journalSince(since), "connected to docker", 0)
		return e != nil && e.priority == "7"
	})

	// Remove stops berthd; config and state stay.
	m.must("apt-get remove -y berth")
	if got := m.prop("ActiveState"); got == "active" || got == "activating" {
		t.Errorf("berthd is %s after remove", got)
	}
	if out, err := m.sh("grep -lx berthd /proc/[0-9]*/comm"); err == nil {
		t.Errorf("a berthd process survived remove: %s", out)
	}
	m.must("test -f /etc/berth/config.toml && test -f /var/lib/berth/state.db && ! test -e /usr/sbin/berthd && ! test -e /run/berth")

	// Purge removes the state too; nothing left but the group.
	m.must("apt-get purge -y berth")
	m.must("! test -e /var/lib/berth && ! test -e /etc/berth")
	if out, err := m.sh("systemctl cat berthd.service"); err == nil {
		t.Errorf("systemd still knows berthd.service after purge:\n%s", out)
	}
	m.stop()
	if diff := leftovers(before, snapshot(t, root), "etc/group", "etc/group-", "etc/gshadow", "etc/gshadow-"); len(diff) > 0 {
		t.Errorf("install + purge in the booted system left differences:\n%s", strings.Join(diff, "\n"))
	}
	t.Logf("system test took %s", time.Since(start).Round(time.Second))
}

// machine is a booted systemd-nspawn container.
type machine struct {
	t       *testing.T
	root    string
	cmd     *exec.Cmd
	init    int
	exited  chan struct{}
	console *berthdtest.SyncBuffer
	once    sync.Once
}

// boot starts systemd in root and waits until the boot is finished. The
// container has its own network namespace (only loopback), so berthd's web
// UI port does not collide with the host's; the host's Docker socket is
// bound in. --register=no --keep-unit: the host may not run systemd.
// m.cmd is timeout(1), the parent of systemd-nspawn.
func boot(t *testing.T, root string) *machine {
	t.Helper()
	m := &machine{t: t, root: root, exited: make(chan struct{}), console: &berthdtest.SyncBuffer{}}
	name := fmt.Sprintf("berth-test-%d", os.Getpid())
	// timeout(1) powers the container off (SIGTERM to nspawn) even if this
	// test binary dies without running its cleanups.
	m.cmd = exec.Command("timeout", "--kill-after=30s", "15m", "systemd-nspawn", "--quiet", "--directory="+root, "--machine="+name, "--boot",
		"--register=no", "--keep-unit", "--console=passive", "--resolv-conf=off", "--timezone=off",
		"--private-network", "--bind=/var/run/docker.sock:/run/docker.sock")
	m.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_COLORS=0"}
	m.cmd.Stdout, m.cmd.Stderr = m.console, m.console
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("systemd-nspawn: %v", err)
	}
	go func() { _ = m.cmd.Wait(); close(m.exited) }()
	t.Cleanup(m.stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		pid, err := containerInit(m.cmd.Process.Pid)
		if err == nil {
			m.init = pid
			break
		}
		select {
		case <-m.exited:
			t.Fatalf("systemd-nspawn exited during boot:\n%s", m.console.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's init did not appear: %v\n%s", err, m.console.String())
		}
	}
	var state string
	m.waitFor(90*time.Second, "the container finishes booting", func() bool {
		out, _ := m.shTimeout(30*time.Second, "systemctl is-system-running --wait")
		state = strings.TrimSpace(out)
		return state == "running" || state == "degraded"
	})
	if state == "degraded" {
		out, _ := m.sh("systemctl --failed --no-legend")
		t.Logf("the container booted degraded (not berth's doing):\n%s", out)
	}
	return m
}

// sh runs a shell script inside the container.
func (m *machine) sh(script string) (string, error) { return m.shTimeout(2*time.Minute, script) }

func (m *machine) shTimeout(timeout time.Duration, script string) (string, error) {
	args := append([]string{"--target", strconv.Itoa(m.init), "--all", "--", "env", "-i"}, cleanEnv()...)
	args = append(args, "/bin/sh", "-ec", script)
	return runCmd(timeout, cleanEnv(), "nsenter", args...)
}

func (m *machine) must(script string) string {
	m.t.Helper()
	out, err := m.sh(script)
	if err != nil {
		m.t.Fatalf("in the container: %s\n%v\n%s\n%s", script, err, out, m.status())
	}
	return out
}

// prop is one property of berthd.service.
func (m *machine) prop(name string) string {
	out, err := m.sh("systemctl show -p " + name + " --value berthd.service")
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(out)
}

func (m *machine) propInt(name string) int {
	n, _ := strconv.Atoi(m.prop(name))
	return n
}

func (m *machine) status() string {
	out, _ := m.sh("systemctl status --no-pager --lines=30 berthd.service")
	return out
}

// now is the container's clock, for journalctl --since.
func (m *machine) now() string {
	out, _ := m.sh("date '+%Y-%m-%d %H:%M:%S'")
	return strings.TrimSpace(out)
}

func (m *machine) waitFor(timeout time.Duration, what string, ok func() bool) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			m.t.Fatalf("timed out after %s waiting for: %s\n%s", timeout, what, m.status())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

type journalEntry struct {
	message  string
	priority string
	pid      string
}

func (m *machine) journal() []journalEntry { return m.journalSince("") }

// journalSince reads the journal of berthd.service (and systemd's lines
// about it) as JSON.
func (m *machine) journalSince(since string) []journalEntry {
	m.t.Helper()
	cmd := "journalctl -u berthd.service -o json --no-pager"
	if since != "" {
		cmd += " --since '" + since + "'"
	}
	out := m.must(cmd)
	var es []journalEntry
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			m.t.Fatalf("journalctl -o json: %v: %s", err, l)
		}
		e := journalEntry{priority: str(raw["PRIORITY"]), pid: str(raw["_PID"])}
		switch msg := raw["MESSAGE"].(type) {
		case string:
			e.message = msg
		case []any: // non-UTF-8 messages come as byte arrays
			b := make([]byte, 0, len(msg))
			for _, x := range msg {
				if f, ok := x.(float64); ok {
					b = append(b, byte(f))
				}
			}
			e.message = string(b)
		}
		es = append(es, e)
	}
	return es
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// findEntry returns the n-th entry whose message contains s.
func findEntry(es []journalEntry, s string, n int) *journalEntry {
	for i := range es {
		if strings.Contains(es[i].message, s) {
			if n == 0 {
				return &es[i]
			}
			n--
		}
	}
	return nil
}

// stop powers the container off, and kills it if it does not go.
func (m *machine) stop() {
	m.once.Do(func() {
		select {
		case <-m.exited:
			return
		default:
		}
		if m.init > 0 {
			_, _ = m.shTimeout(15*time.Second, "systemctl poweroff --no-block")
		}
		select {
		case <-m.exited:
			return
		case <-time.After(30 * time.Second):
		}
		m.t.Logf("the container did not power off; killing it")
		if m.init > 0 {
			_ = syscall.Kill(m.init, syscall.SIGKILL)
		}
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-m.exited:
		case <-time.After(10 * time.Second):
			m.t.Errorf("systemd-nspawn (pid %d) did not exit", m.cmd.Process.Pid)
		}
	})
}
