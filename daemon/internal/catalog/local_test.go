package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	dockerclient "github.com/docker/docker/client"

	"github.com/berth-edge/berth/daemon/client"
	"github.com/berth-edge/berth/daemon/internal/engine"
	"github.com/berth-edge/berth/daemon/internal/engine/enginetest"
)

// buildImage builds a one-file image FROM scratch with these labels and
// tags through the Docker API, and removes it when the test ends.
func buildImage(t *testing.T, cli *dockerclient.Client, labels map[string]string, tags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, data string }{
		{"Dockerfile", "FROM scratch\nCOPY hello /hello\n"},
		{"hello", "hello " + randHex(8) + "\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: tags, Labels: labels, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("build %v: %v", tags, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if m.Error != "" {
			t.Fatalf("build %v: %s", tags, m.Error)
		}
	}
	ins, err := cli.ImageInspect(ctx, tags[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = cli.ImageRemove(ctx, ins.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	return ins.ID
}

func TestLocalSource(t *testing.T) {
	t.Parallel()
	cli := enginetest.Docker(t)
	ctx := t.Context()
	eng, err := engine.New(ctx, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })

	suffix := randHex(4)
	labelled := "berth-catalog-test/lab-" + suffix
	id := buildImage(t, cli, map[string]string{TypesLabel: "notebook,headless"}, labelled+":1.0", labelled+":1.10")
	plain := "berth-catalog-test/plain-" + suffix + ":1"
	buildImage(t, cli, map[string]string{"berth.test": "true"}, plain)

	cat, err := New(Options{Local: eng, Credentials: openStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	cat.Refresh(ctx)
	if src := cat.Sources(); len(src) != 1 || src[0].Name != "local" || src[0].Error != "" {
		t.Fatalf("sources: %+v", src)
	}
	var mine []client.Image
	for _, im := range cat.List(ctx, "") {
		switch im.ID {
		case labelled + ":1.0", labelled + ":1.10":
			mine = append(mine, im)
		case plain:
			t.Errorf("the unlabelled %s is listed", plain)
		}
	}
	want := []client.Image{
		{ID: labelled + ":1.0", Types: []string{"notebook", "headless"}, Digest: id, Source: "local"},
		{ID: labelled + ":1.10", Types: []string{"notebook", "headless"}, Digest: id, Source: "local"},
	}
	if !reflect.DeepEqual(mine, want) {
		t.Errorf("local images = %+v\nwant %+v", mine, want)
	}

	// A new tag shows once Run hears of it from Docker's image events.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cat.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select { // Run's first listing
	case <-cat.Changed():
	case <-time.After(30 * time.Second):
		t.Fatal("no change signalled by the first listing")
	}
	if err := cli.ImageTag(ctx, labelled+":1.0", labelled+":2.0"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cat.Changed():
	case <-time.After(30 * time.Second):
		t.Fatal("no change signalled after a tag")
	}
	found := false
	for _, im := range cat.List(ctx, client.TypeNotebook) {
		found = found || im.ID == labelled+":2.0"
	}
	if !found {
		t.Errorf("%s:2.0 not listed after the image event", labelled)
	}
}
