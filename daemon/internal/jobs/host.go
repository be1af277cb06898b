package jobs

import (
	"context"
	"fmt"
	"os/exec"
	"os/user"
	"strings"
	"time"

	"github.com/berth-edge/berth/daemon/internal/apps"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/logring"
)

// DefaultRebootDelay is how long after reporting a reboot job berthd
// reboots the host, as NuvlaEdge does.
const DefaultRebootDelay = 10 * time.Second

// ConfigFile is where operators change the host settings; messages name it.
const ConfigFile = "/etc/berth/config.toml"

// HostOptions wire the jobs that act on the box itself. Every function has
// a real default; tests inject their own so that nothing touches the
// machine they run on.
type HostOptions struct {
	// Docker does the single-object operations of coe_resource_actions and
	// reads container logs. Nil refuses those jobs.
	Docker Docker
	// Log holds berthd's own recent log lines (component "berthd" of
	// fetch_nuvlabox_log). Nil means no lines.
	Log *logring.Ring

	// AllowReboot lets reboot_nuvlabox reboot the host (config
	// host.allow-reboot).
	AllowReboot bool
	// Reboot reboots the host; default `systemctl reboot` (logind).
	Reboot func(ctx context.Context) error
	// RebootDelay is the wait between reporting the job and rebooting
	// (default DefaultRebootDelay; negative means none).
	RebootDelay time.Duration

	// SSHUser owns the authorized_keys the ssh-key jobs edit (config
	// host.ssh-user, default root).
	SSHUser string
	// LookupUser resolves SSHUser; default os/user.Lookup.
	LookupUser func(name string) (*user.User, error)

	// Command runs a program and returns its combined output; default
	// os/exec. nuvlabox_update runs dpkg-query, apt-cache and systemd-run
	// through it.
	Command func(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Docker is what the host jobs need from the engine; *engine.Engine has it.
type Docker interface {
	PullImage(ctx context.Context, ref string, cred *engine.Credential, auth engine.Auth) error
	RemoveImage(ctx context.Context, ref string) error
	RemoveContainer(ctx context.Context, id string) error
	RemoveVolume(ctx context.Context, name string) error
	RemoveNetwork(ctx context.Context, id string) error
	Inspect(ctx context.Context, id string) (apps.Container, error)
	ListAll(ctx context.Context) ([]apps.Container, error)
	LogLines(ctx context.Context, containerID string, since time.Time, tail int) ([]engine.LogLine, error)
}

func (h HostOptions) withDefaults() HostOptions {
	if h.Command == nil {
		h.Command = runCommand
	}
	if h.Reboot == nil {
		cmd := h.Command
		h.Reboot = func(ctx context.Context) error {
			out, err := cmd(ctx, "systemctl", "reboot")
			if err != nil {
				return fmt.Errorf("systemctl reboot: %w: %s", err, strings.TrimSpace(string(out)))
			}
			return nil
		}
	}
	if h.RebootDelay == 0 {
		h.RebootDelay = DefaultRebootDelay
	}
	if h.SSHUser == "" {
		h.SSHUser = "root"
	}
	if h.LookupUser == nil {
		h.LookupUser = user.Lookup
	}
	return h
}

// runCommand runs name with args and returns its combined output.
func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// boxTarget checks that the job targets a nuvlabox and returns its id.
func boxTarget(job *Job) (string, error) {
	t := job.TargetResource.Href
	uuid, ok := strings.CutPrefix(t, "nuvlabox/")
	if !ok || uuid == "" || strings.ContainsAny(uuid, "/ ") {
		return "", fmt.Errorf("%s needs a nuvlabox as target-resource, got %q", job.Action, t)
	}
	return t, nil
}

// affected returns the first affected resource of the given type.
func affected(job *Job, typ string) string {
	for _, a := range job.AffectedResources {
		if strings.HasPrefix(a.Href, typ+"/") {
			return a.Href
		}
	}
	return ""
}

// afterSuccess runs fn once the job's success is journaled and reported.
func (jc *jobContext) afterSuccess(fn func(ctx context.Context)) { jc.after = fn }
