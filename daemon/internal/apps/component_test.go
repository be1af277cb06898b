package apps

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The example component from Nuvla's own schema tests.
const nuvlaExample = `{"image": {"repository": "my-repo", "image-name": "ubuntu", "tag": "16.04"},
 "author": "someone", "commit": "initial", "architectures": ["amd64", "arm64/v8"],
 "cpus": 1.3, "memory": 256,
 "restart-policy": {"condition": "any", "delay": 10, "max-attempts": 5, "window": 600},
 "mounts": [{"mount-type": "bind", "source": "/abc/file", "target": "/file", "read-only": false},
            {"mount-type": "volume", "source": "/nfs-server/nfs-path", "target": "/mnt",
             "volume-options": {"o": "addr=1.2.3.4", "device": "nfs-server/nfs-path", "type": "nfs", "vers": "4"}}],
 "ports": [{"protocol": "tcp", "target-port": 22, "published-port": 8022}, {"target-port": 333}],
 "urls": [["primary", "https://${host}:${port-443}/my/path"]],
 "environmental-variables": [{"name": "ALPHA_ENV", "value": "OK"},
                             {"name": "BETA_ENV", "description": "beta-env variable"}],
 "private-registries": ["infrastructure-service/uuid-1"],
 "output-parameters": [{"name": "alpha", "description": "my-alpha"}]}`

func TestFromComponentNuvlaExample(t *testing.T) {
	app, err := FromComponent(ComponentInput{
		AppID: "d1", Name: "ubuntu", Content: json.RawMessage(nuvlaExample), Arch: "amd64",
		Env: map[string]string{"NUVLA_DEPLOYMENT_UUID": "d1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &App{
		ID: "d1", Kind: KindNuvlaComponent, Name: "ubuntu",
		Services: []Service{{
			Name:  "ubuntu",
			Image: "my-repo/ubuntu:16.04",
			Env:   map[string]string{"ALPHA_ENV": "OK", "NUVLA_DEPLOYMENT_UUID": "d1"},
			Ports: []Port{{Target: 22, Published: 8022, Protocol: "tcp"}, {Target: 333, Protocol: "tcp"}},
			Mounts: []Mount{
				{Type: MountBind, Source: "/abc/file", Target: "/file"},
				{Type: MountVolume, Source: "d1_mount1", Target: "/mnt",
					VolumeOptions: map[string]string{"o": "addr=1.2.3.4,vers=4", "device": ":/nfs-server/nfs-path", "type": "nfs"}},
			},
			CPUs:      1.3,
			MemoryMiB: 256,
			Restart:   RestartPolicy{Condition: RestartAny},
		}},
		Outputs: []string{"alpha"},
		URLs:    [][2]string{{"primary", "https://${host}:${port-443}/my/path"}},
	}
	if !reflect.DeepEqual(app, want) {
		gotJSON, _ := json.MarshalIndent(app, "", " ")
		wantJSON, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("FromComponent:\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestComponentImageReference(t *testing.T) {
	tests := []struct {
		in   ComponentImage
		want string
	}{
		{ComponentImage{ImageName: "nginx"}, "nginx:latest"},
		{ComponentImage{ImageName: "nginx", Tag: "1.25"}, "nginx:1.25"},
		{ComponentImage{Registry: "https://registry.example.com:5000/", Repository: "team", ImageName: "app", Tag: "2"}, "registry.example.com:5000/team/app:2"},
		{ComponentImage{Repository: "sixsq", ImageName: "nuvlaedge"}, "sixsq/nuvlaedge:latest"},
	}
	for _, tt := range tests {
		got, err := tt.in.Reference()
		if err != nil || got != tt.want {
			t.Errorf("Reference(%+v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestFromComponentRejects(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // every fragment must appear in the error
	}{
		{"empty content", ``, []string{"no content"}},
		{"not an object", `[1,2]`, []string{"expected"}},
		{"wrong type", `{"image":{"image-name":"x"},"ports":[{"target-port":"80"}]}`, []string{"ports.target-port", "expected int"}},
		{"no image", `{"image":{}}`, []string{"image-name is required"}},
		{"bad image", `{"image":{"image-name":"UPPER CASE"}}`, []string{"not a valid image reference"}},
		{"port out of range", `{"image":{"image-name":"x"},"ports":[{"target-port":70000}]}`, []string{"target-port 70000"}},
		{"bad protocol", `{"image":{"image-name":"x"},"ports":[{"target-port":80,"protocol":"http"}]}`, []string{`protocol "http"`}},
		{"duplicate port", `{"image":{"image-name":"x"},"ports":[{"target-port":80},{"target-port":80,"protocol":"tcp"}]}`, []string{"tcp.80 is listed twice"}},
		{"relative target", `{"image":{"image-name":"x"},"mounts":[{"mount-type":"tmpfs","target":"data"}]}`, []string{"must be an absolute path"}},
		{"bad mount type", `{"image":{"image-name":"x"},"mounts":[{"mount-type":"nfs","target":"/d"}]}`, []string{`mount-type "nfs"`}},
		{"nfs without addr", `{"image":{"image-name":"x"},"mounts":[{"mount-type":"volume","target":"/d","volume-options":{"type":"nfs","device":":/x"}}]}`, []string{"o=addr=<server>"}},
		{"reserved env", `{"image":{"image-name":"x"},"environmental-variables":[{"name":"NUVLA_X","value":"1"}]}`, []string{"reserved"}},
		{"required env", `{"image":{"image-name":"x"},"environmental-variables":[{"name":"TOKEN","required":true}]}`, []string{"TOKEN is required"}},
		{"bad restart", `{"image":{"image-name":"x"},"restart-policy":{"condition":"always"}}`, []string{`condition "always"`}},
		{"wrong arch", `{"image":{"image-name":"x"},"architectures":["arm/v7"]}`, []string{"this host is amd64"}},
		{"several problems at once", `{"image":{"image-name":"x"},"cpus":-1,"ports":[{"target-port":0}]}`, []string{"cpus -1", "target-port 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromComponent(ComponentInput{AppID: "d1", Content: json.RawMessage(tt.content), Arch: "amd64"})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
