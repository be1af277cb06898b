// Package enginetest helps tests that need a real Docker engine: it finds the
// engine (skipping the test when there is none), builds the testapp image and
// the notebook-like and contributed session images without any registry, and
// cleans up what a test created.
package enginetest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// TestImage is the conventional tag of the testapp image.
const TestImage = "berth-testapp:test"

// NotebookImage and ContributedImage are the conventional tags of the
// session test images.
const (
	NotebookImage    = "berth-testnotebook:test"
	ContributedImage = "berth-testcontributed:test"
)

// Dockerfiles of the test images; each copies the testapp binary.
const (
	testappDockerfile = "FROM scratch\nCOPY testapp /testapp\nEXPOSE 8080\nENTRYPOINT [\"/testapp\"]\n"
	// The notebook image runs `jupyter lab` unless told otherwise; the
	// testapp imitates it when called as jupyter.
	notebookDockerfile = "FROM scratch\nCOPY testapp /testapp\nCOPY testapp /usr/local/bin/jupyter\n" +
		"LABEL berth.types=notebook\nEXPOSE 8888\nENTRYPOINT [\"/usr/local/bin/jupyter\"]\nCMD [\"lab\"]\n"
	contributedDockerfile = "FROM scratch\nCOPY testapp /testapp\nENV PORT=5000\n" +
		"LABEL berth.types=contributed\nEXPOSE 5000\nENTRYPOINT [\"/testapp\"]\n"
)

// Docker returns a client of the local Docker engine, closed when the test
// ends. The test is skipped when no engine answers.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			t.Skipf("docker not available: no DOCKER_HOST and %v", err)
		}
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Skipf("docker not available: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		_ = cli.Close()
		t.Skipf("docker not available: %v", err)
	}
	cli.NegotiateAPIVersion(ctx)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

type buildResult struct {
	once sync.Once
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*buildResult{}
)

// BuildTestImage builds the testapp (CGO_ENABLED=0) and an image FROM scratch
// that runs it (ENTRYPOINT /testapp, EXPOSE 8080), tagged tag, through the
// Docker API: no docker CLI, no registry. It builds once per test process and
// tag, and fails the test if the build fails. It returns tag.
func BuildTestImage(t testing.TB, tag string) string {
	t.Helper()
	return buildOnce(t, tag, testappDockerfile)
}

// BuildNotebookImage builds, like BuildTestImage, a notebook-like image
// tagged tag: FROM scratch, the testapp as /testapp and as
// /usr/local/bin/jupyter, label berth.types=notebook, EXPOSE 8888, and
// ENTRYPOINT ["/usr/local/bin/jupyter"] CMD ["lab"], so it serves without
// any override and also under `jupyter lab --ServerApp.base_url=...
// --ServerApp.token=...` (see the testapp's doc comment). It returns tag.
func BuildNotebookImage(t testing.TB, tag string) string {
	t.Helper()
	return buildOnce(t, tag, notebookDockerfile)
}

// BuildContributedImage builds, like BuildTestImage, a contributed-app
// image tagged tag: the testapp with ENV PORT=5000, label
// berth.types=contributed, EXPOSE 5000, ENTRYPOINT ["/testapp"]. It
// returns tag.
func BuildContributedImage(t testing.TB, tag string) string {
	t.Helper()
	return buildOnce(t, tag, contributedDockerfile)
}

// buildOnce builds the image of dockerfile (with the testapp binary in its
// context) as tag, once per test process and tag.
func buildOnce(t testing.TB, tag, dockerfile string) string {
	t.Helper()
	cli := Docker(t)
	buildsMu.Lock()
	r, ok := builds[tag]
	if !ok {
		r = &buildResult{}
		builds[tag] = r
	}
	buildsMu.Unlock()
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		r.err = buildImage(ctx, cli, tag, dockerfile, t.TempDir())
	})
	if r.err != nil {
		t.Fatalf("build test image %s: %v", tag, r.err)
	}
	return tag
}

func buildImage(ctx context.Context, cli *client.Client, tag, dockerfile, dir string) error {
	root, err := repoRoot(ctx)
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, "testapp")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./daemon/internal/testapp")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build testapp: %w\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("read testapp binary: %w", err)
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte(dockerfile)},
		{"testapp", 0o755, exe},
	} {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar build context: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("tar build context: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar build context: %w", err)
	}
	var oldID string
	if ins, err := cli.ImageInspect(ctx, tag); err == nil {
		oldID = ins.ID
	}
	resp, err := cli.ImageBuild(ctx, &ctxTar, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{"berth.test": "true"},
	})
	if err != nil {
		return fmt.Errorf("docker build %s: %w", tag, err)
	}
	defer resp.Body.Close()
	if err := drain(resp.Body); err != nil {
		return fmt.Errorf("docker build %s: %w", tag, err)
	}
	// Drop the image this build replaced, unless something still uses it.
	if ins, err := cli.ImageInspect(ctx, tag); err == nil && oldID != "" && ins.ID != oldID {
		_, _ = cli.ImageRemove(ctx, oldID, image.RemoveOptions{})
	}
	return nil
}

// drain reads a build progress stream and returns the error it reports.
func drain(r io.Reader) error {
	dec := json.NewDecoder(r)
	var log strings.Builder
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read build output: %w", err)
		}
		log.WriteString(m.Stream)
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return fmt.Errorf("%s\n%s", m.ErrorDetail.Message, log.String())
		}
		if m.Error != "" {
			return fmt.Errorf("%s\n%s", m.Error, log.String())
		}
	}
}

// repoRoot finds the module root: from this source file's location when it
// holds go.mod, else from `go env GOMOD`.
func repoRoot(ctx context.Context) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		// .../daemon/internal/engine/enginetest/enginetest.go
		root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			return filepath.Clean(root), nil
		}
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("cannot locate the repository root: not in a module")
	}
	return filepath.Dir(gomod), nil
}

// CleanupApp force-removes, when the test ends, every container, network
// and volume labelled berth.app=appID.
func CleanupApp(t testing.TB, cli *client.Client, appID string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f := filters.NewArgs(filters.Arg("label", "berth.app="+appID))
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Errorf("cleanup app %s: list containers: %v", appID, err)
			return
		}
		for _, c := range cs {
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Logf("cleanup app %s: remove container %s: %v", appID, c.ID, err)
			}
		}
		if ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f}); err == nil {
			for _, n := range ns {
				if err := cli.NetworkRemove(ctx, n.ID); err != nil {
					t.Logf("cleanup app %s: remove network %s: %v", appID, n.Name, err)
				}
			}
		}
		vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
		if err != nil {
			t.Errorf("cleanup app %s: list volumes: %v", appID, err)
			return
		}
		for _, v := range vs.Volumes {
			if err := cli.VolumeRemove(ctx, v.Name, true); err != nil {
				t.Logf("cleanup app %s: remove volume %s: %v", appID, v.Name, err)
			}
		}
	})
}
