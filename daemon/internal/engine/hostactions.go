package engine

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
)

// This file holds the one-object operations the control plane's
// coe_resource_actions and log jobs ask for, outside of any app.

// PullImage pulls ref even when it is present, so that a moving tag is
// refreshed. cred, when not nil, is used for the registry; otherwise the
// matching credential of auth, if any.
func (e *Engine) PullImage(ctx context.Context, ref string, cred *Credential, auth Auth) error {
	c, found := Credential{}, false
	if cred != nil {
		c, found = *cred, true
	} else {
		c, found = auth.For(ref)
	}
	return e.pull(ctx, ref, c, found)
}

// RemoveImage removes an image by reference or id, as `docker rmi` does
// (no force: an image a container uses is refused).
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	if _, err := e.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}); err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	e.log.Info("removed image", "image", ref)
	return nil
}

// RemoveContainer removes a container by id or name, stopping it first
// (as `docker rm -f`), with its anonymous volumes.
func (e *Engine) RemoveContainer(ctx context.Context, id string) error {
	if err := e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	e.log.Info("removed container", "container", id)
	return nil
}

// RemoveVolume removes a volume by name (no force: a volume in use is refused).
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	if err := e.cli.VolumeRemove(ctx, name, false); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	e.log.Info("removed volume", "volume", name)
	return nil
}

// RemoveNetwork removes a network by id or name.
func (e *Engine) RemoveNetwork(ctx context.Context, id string) error {
	if err := e.cli.NetworkRemove(ctx, id); err != nil {
		return fmt.Errorf("remove network %s: %w", id, err)
	}
	e.log.Info("removed network", "network", id)
	return nil
}

// NetworkExists reports whether a network exists (for tests and checks).
func (e *Engine) NetworkExists(ctx context.Context, id string) (bool, error) {
	_, err := e.cli.NetworkInspect(ctx, id, network.InspectOptions{})
	if err == nil {
		return true, nil
	}
	if IsNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("inspect network %s: %w", id, err)
}

// LogLine is one line of a container's output with Docker's timestamp.
type LogLine struct {
	Time time.Time
	Text string
}

// LogLines returns a container's stdout and stderr lines, interleaved as
// Docker recorded them, written strictly after since (all when zero), at
// most the last tail of them (all when tail <= 0), and at most 1 MiB in all
// (the end is kept).
func (e *Engine) LogLines(ctx context.Context, containerID string, since time.Time, tail int) ([]LogLine, error) {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Tail: "all"}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	if !since.IsZero() {
		opts.Since = strconv.FormatInt(since.Unix(), 10) + "." + fmt.Sprintf("%09d", since.Nanosecond())
	}
	out, err := e.readLogs(ctx, containerID, opts)
	if err != nil {
		return nil, err
	}
	return parseLogLines(out, since), nil
}

// parseLogLines splits Docker's timestamped output ("<RFC3339Nano> text")
// into lines; a first line cut by the size bound and lines not after since
// are dropped.
func parseLogLines(s string, since time.Time) []LogLine {
	var out []LogLine
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64*1024), maxLogBytes+1)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		ts, text, ok := strings.Cut(line, " ")
		if !ok {
			ts, text = line, ""
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue // a line cut by the size bound, or not Docker's format
		}
		if !since.IsZero() && !t.After(since) {
			continue
		}
		out = append(out, LogLine{Time: t.UTC(), Text: text})
	}
	return out
}
