package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
)

func TestReownTar(t *testing.T) {
	var src bytes.Buffer
	tw := tar.NewWriter(&src)
	for _, h := range []*tar.Header{
		{Name: "user/", Typeflag: tar.TypeDir, Mode: 0o750},
		{Name: "user/.bashrc", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2, Uid: 1000, Gid: 1000, Uname: "jovyan"},
		{Name: "user/sub/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "user/sub/link", Typeflag: tar.TypeSymlink, Linkname: "../.bashrc"},
		{Name: "user/hard", Typeflag: tar.TypeLink, Linkname: "user/.bashrc"},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte("hi"))
		}
	}
	_ = tw.Close()
	var out bytes.Buffer
	if err := reownTar(&src, &out, "dest", 42, 43); err != nil {
		t.Fatal(err)
	}
	var got []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 42 || h.Gid != 43 || h.Uname != "" {
			t.Errorf("%s owned by %d:%d %q", h.Name, h.Uid, h.Gid, h.Uname)
		}
		got = append(got, h.Name+">"+h.Linkname)
	}
	want := "dest/> dest/.bashrc> dest/sub/> dest/sub/link>../.bashrc dest/hard>dest/.bashrc"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}

	out.Reset()
	if err := reownTar(nil, &out, "dest", 42, 43); err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(&out).Next()
	if err != nil || h.Name != "dest/" || h.Uid != 42 {
		t.Errorf("empty home: %+v %v", h, err)
	}
}

func TestEnsureHome(t *testing.T) {
	cli := enginetest.Docker(t)
	img := enginetest.BuildTestImage(t, enginetest.TestImage)
	ctx := context.Background()
	e, err := New(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const vol = "berth-test-home-ensure"
	_ = cli.VolumeRemove(ctx, vol, true)
	t.Cleanup(func() { _ = cli.VolumeRemove(context.Background(), vol, true) })
	// The testapp image has no home: the volume's root is still alice's.
	// Its binary, seeded as the "home" /, shows that files are copied
	// and re-owned.
	created, err := e.EnsureHome(ctx, HomeVolume{Name: vol, UID: 4242, GID: 4343, Labels: map[string]string{"berth.test": "true"}}, img, "/nohome")
	if err != nil || !created {
		t.Fatalf("EnsureHome = %v, %v", created, err)
	}
	if created, err := e.EnsureHome(ctx, HomeVolume{Name: vol, UID: 4242, GID: 4343}, img, "/nohome"); err != nil || created {
		t.Fatalf("second EnsureHome = %v, %v", created, err)
	}
	// Look at the volume through a created container's archive.
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: img}, &container.HostConfig{
		Binds: []string{vol + ":/v"},
	}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) }()
	st, err := cli.ContainerStatPath(ctx, resp.ID, "/v")
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := cli.CopyFromContainer(ctx, resp.ID, "/v")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h, err := tar.NewReader(rc).Next()
	if err != nil || h.Uid != 4242 || h.Gid != 4343 {
		t.Errorf("volume root: %+v %v (stat %+v)", h, err, st)
	}
}

func TestPullAggregate(t *testing.T) {
	msg := func(id, status string, cur, total int64) jsonMessage {
		m := jsonMessage{ID: id, Status: status}
		m.ProgressDetail.Current, m.ProgressDetail.Total = cur, total
		return m
	}
	steps := []struct {
		m       jsonMessage
		changed bool
		want    PullProgress
	}{
		{msg("1", "Pulling from astro/x", 0, 0), false, PullProgress{}},
		{msg("a", "Pulling fs layer", 0, 0), true, PullProgress{Layers: 1}},
		{msg("b", "Already exists", 0, 0), true, PullProgress{Layers: 2, LayersDone: 1}},
		{msg("a", "Downloading", 50, 200), true, PullProgress{Current: 50, Total: 200, Layers: 2, LayersDone: 1}},
		{msg("a", "Download complete", 0, 0), true, PullProgress{Current: 200, Total: 200, Layers: 2, LayersDone: 1}},
		{msg("a", "Extracting", 10, 200), true, PullProgress{Current: 200, Total: 200, Layers: 2, LayersDone: 1}},
		{msg("a", "Pull complete", 0, 0), true, PullProgress{Current: 200, Total: 200, Layers: 2, LayersDone: 2}},
		{msg("", "Digest: sha256:00", 0, 0), false, PullProgress{Current: 200, Total: 200, Layers: 2, LayersDone: 2}},
	}
	var a pullAggregate
	for i, s := range steps {
		if got := a.add(s.m); got != s.changed {
			t.Errorf("step %d: changed = %v", i, got)
		}
		if got := a.total(); got != s.want {
			t.Errorf("step %d (%s %s): %+v, want %+v", i, s.m.ID, s.m.Status, got, s.want)
		}
	}
}
