package engine

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// maxLogBytes bounds what Logs returns, whatever tail says.
const maxLogBytes = 1 << 20

// Logs returns the last tail lines (all when tail <= 0) of a container's
// stdout and stderr, interleaved as Docker recorded them, for reporting why a
// container failed. At most 1 MiB is returned (the end is kept).
func (e *Engine) Logs(ctx context.Context, containerID string, tail int) (string, error) {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "all"}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	return e.readLogs(ctx, containerID, opts)
}

// readLogs returns a container's output as Docker gives it with opts,
// stdout and stderr demultiplexed (or copied as is for a TTY), bounded to
// the last maxLogBytes.
func (e *Engine) readLogs(ctx context.Context, containerID string, opts container.LogsOptions) (string, error) {
	ins, err := e.cli.ContainerInspect(ctx, containerID)
	if err != nil {
		return "", fmt.Errorf("logs of container %s: %w", containerID, err)
	}
	rc, err := e.cli.ContainerLogs(ctx, containerID, opts)
	if err != nil {
		return "", fmt.Errorf("logs of container %s: %w", containerID, err)
	}
	defer rc.Close()
	var b tailBuffer
	if ins.Config != nil && ins.Config.Tty {
		_, err = io.Copy(&b, rc)
	} else {
		_, err = stdcopy.StdCopy(&b, &b, rc)
	}
	if err != nil {
		return "", fmt.Errorf("read logs of container %s: %w", containerID, err)
	}
	return b.String(), nil
}

// tailBuffer keeps the last maxLogBytes written to it.
type tailBuffer struct{ sb strings.Builder }

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.sb.Write(p)
	if t.sb.Len() > 2*maxLogBytes {
		s := t.sb.String()
		t.sb.Reset()
		t.sb.WriteString(s[len(s)-maxLogBytes:])
	}
	return n, nil
}

func (t *tailBuffer) String() string {
	s := t.sb.String()
	if len(s) > maxLogBytes {
		s = s[len(s)-maxLogBytes:]
	}
	return s
}
