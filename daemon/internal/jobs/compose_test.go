package jobs

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-edge/berth/daemon/internal/apps"
)

func TestServiceParams(t *testing.T) {
	c := apps.Container{ID: "abc", Service: "web", Image: "nginx:1", Ports: []apps.PortBinding{
		{Target: 80, Protocol: "tcp", HostPort: 32768}, {Target: 53, Protocol: "udp", HostPort: 5353},
	}}
	var got [][2]string
	for _, p := range serviceParams(c) {
		got = append(got, [2]string{p[0], p[1]})
	}
	want := [][2]string{{"web.node-id", "web"}, {"web.service-id", "abc"}, {"web.image", "nginx:1"}, {"web.tcp.80", "32768"}, {"web.udp.53", "5353"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("serviceParams = %v, want %v", got, want)
	}
}

func TestWriteAppFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	a := &apps.Application{DockerCompose: "services: {}\n", Files: []apps.ApplicationFile{{FileName: "conf/a.conf", FileContent: "a"}}}
	if err := writeAppFiles(dir, a); err != nil {
		t.Fatal(err)
	}
	// A data directory a bind mount created survives a rewrite.
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	a.Files[0].FileContent = "b"
	if err := writeAppFiles(dir, a); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "conf/a.conf")); string(b) != "b" {
		t.Errorf("conf/a.conf = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, apps.ComposeFileName)); string(b) != "services: {}\n" {
		t.Errorf("compose file = %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		t.Errorf("data directory removed: %v", err)
	}
	if err := writeAppFiles(dir, &apps.Application{DockerCompose: "x", Files: []apps.ApplicationFile{{FileName: "../escape"}}}); err == nil {
		t.Error("a file outside the app directory was written")
	}
}
