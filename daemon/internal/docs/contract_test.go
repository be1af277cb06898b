// Package docs checks docs/app-contract.md against the code: its
// publish-parameter example runs for real against nuvlatest, and its
// parameter-id test vectors are compared with nuvla.ParameterID.
//
// The tests live here, not next to the document, because only code under
// daemon/ may import daemon/internal packages.
package docs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-edge/berth/daemon/internal/nuvla"
	"github.com/berth-edge/berth/daemon/internal/nuvla/nuvlatest"
)

// contractPath is docs/app-contract.md, from this package's directory.
const contractPath = "../../../docs/app-contract.md"

const (
	exampleStart = "<!-- example:publish-parameter -->"
	exampleEnd   = "<!-- /example -->"
)

func readContract(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(contractPath)
	if err != nil {
		t.Fatalf("read the app contract: %v", err)
	}
	return string(b)
}

// publishExample returns the sh block between the example markers.
func publishExample(t *testing.T, doc string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, exampleStart)
	if !ok {
		t.Fatalf("%s has no %s marker", contractPath, exampleStart)
	}
	section, _, ok := strings.Cut(rest, exampleEnd)
	if !ok {
		t.Fatalf("%s: %s is not closed by %s", contractPath, exampleStart, exampleEnd)
	}
	if n := strings.Count(section, "```"); n != 2 {
		t.Fatalf("%s: want one code block between the example markers, found %d fences", contractPath, n)
	}
	_, code, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatalf("%s: the code block between the example markers is not ```sh", contractPath)
	}
	code, _, ok = strings.Cut(code, "\n```")
	if !ok {
		t.Fatalf("%s: the ```sh block of the example is not closed", contractPath)
	}
	return code + "\n"
}

// vectorRow is a row of the test-vector table: | `hashed string` | `id` |.
var vectorRow = regexp.MustCompile("(?m)^\\| `([^`]*)` \\| `(deployment-parameter/[^`]*)` \\|$")

func TestParameterIDVectors(t *testing.T) {
	rows := vectorRow.FindAllStringSubmatch(readContract(t), -1)
	if len(rows) < 4 {
		t.Fatalf("%s has %d parameter-id test vectors, want at least 4", contractPath, len(rows))
	}
	for _, r := range rows {
		parts := strings.SplitN(r[1], ":", 3)
		if len(parts) != 3 {
			t.Errorf("vector %q is not <parent>:<node-id>:<name>", r[1])
			continue
		}
		if got := nuvla.ParameterID(parts[0], parts[1], parts[2]); got != r[2] {
			t.Errorf("vector %q: the document says %s, nuvla.ParameterID gives %s", r[1], r[2], got)
		}
	}
}

func TestPublishParameterExample(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "md5sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the publish-parameter example needs %s, which is not installed (make test-deps installs it)", tool)
		}
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "publish-parameter.sh")
	if err := os.WriteFile(script, []byte(publishExample(t, readContract(t))), 0o755); err != nil {
		t.Fatal(err)
	}

	srv, err := nuvlatest.New(nuvlatest.Options{Addr: "127.0.0.1:0", NoDeploymentStateJobs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A commissioned box, as berthd leaves it.
	box := srv.CreateNuvlabox("contract")
	bc := client(t, srv.URL())
	key, secret, err := bc.Activate(ctx, box)
	if err != nil {
		t.Fatal(err)
	}
	bc.SetCredentials(key, secret)
	if err := bc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bc.Operation(ctx, box, "commission", map[string]any{
		"capabilities":   []string{"NUVLA_HEARTBEAT", "NUVLA_JOB_PULL"},
		"swarm-endpoint": "local", "swarm-client-ca": "null", "swarm-client-cert": "null", "swarm-client-key": "null",
	}, nil); err != nil {
		t.Fatal(err)
	}

	// A started deployment of a module with one output parameter.
	const name = "result"
	dep := srv.CreateDeployment(box, map[string]any{
		"subtype": "component",
		"content": map[string]any{
			"image":             map[string]any{"image-name": "example/web", "tag": "1.0"},
			"architectures":     []any{"amd64", "arm64"},
			"author":            "contract test",
			"output-parameters": []any{map[string]any{"name": name, "description": "what the app computed"}},
		},
	})
	if _, err := srv.StartDeployment(dep); err != nil {
		t.Fatal(err)
	}
	d, _ := srv.Resource(dep)
	creds, _ := d["api-credentials"].(map[string]any)
	depKey, _ := creds["api-key"].(string)
	depSecret, _ := creds["api-secret"].(string)
	endpoint, _ := d["api-endpoint"].(string)
	owner, _ := d["owner"].(string)
	if depKey == "" || depSecret == "" || endpoint == "" || owner == "" {
		t.Fatalf("started deployment lacks credentials, endpoint or owner: %v", d)
	}

	// berthd creates the output parameter empty, as the deployment, with
	// the ACL Nuvla's job engine uses.
	dc := client(t, endpoint)
	dc.SetCredentials(depKey, depSecret)
	if err := dc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	acl := map[string]any{"owners": []string{"group/nuvla-admin"}, "edit-acl": []string{owner}}
	if err := dc.CreateParameter(ctx, dep, nuvla.Parameter{Name: name, Description: "output parameter of the app"}, acl); err != nil {
		t.Fatal(err)
	}
	paramID := nuvla.ParameterID(dep, "", name)
	if p, ok := srv.Resource(paramID); !ok || p["value"] != nil {
		t.Fatalf("parameter %s before the example ran: %v (exists %t)", paramID, p, ok)
	}

	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir, // no ~/.curlrc; no proxy variables either
		"NUVLA_ENDPOINT=" + endpoint,
		"NUVLA_API_KEY=" + depKey,
		"NUVLA_API_SECRET=" + depSecret,
		"NUVLA_DEPLOYMENT_ID=" + dep,
		"NUVLA_DEPLOYMENT_UUID=" + strings.TrimPrefix(dep, "deployment/"),
	}
	// run runs the example; its error carries the script's output.
	run := func(env []string, name, value string) (string, error) {
		cmd := exec.CommandContext(ctx, "sh", script, name, value)
		cmd.Env, cmd.Dir = env, dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("sh publish-parameter.sh %s %q: %w\nstdout: %s\nstderr: %s", name, value, err, stdout.String(), stderr.String())
		}
		return strings.TrimSpace(stdout.String()), nil
	}

	values := []string{"42", "he said \"hi\" \\o/ 100% \tdone\nsecond line é"}
	for _, value := range values {
		out, err := run(env, name, value)
		if err != nil {
			t.Fatal(err)
		}
		if out != paramID {
			t.Errorf("the example printed the id %q, nuvla.ParameterID gives %q", out, paramID)
		}
		p, _ := srv.Resource(paramID)
		if p["value"] != value {
			t.Fatalf("after the example set %q, the server has value %#v", value, p["value"])
		}
	}

	// The edits were made by the deployment itself, through the computed id.
	puts := 0
	for _, r := range srv.Requests() {
		if r.Method == "PUT" && r.Path == "/api/"+paramID {
			puts++
			if r.Identity != dep || r.Status != 200 {
				t.Errorf("PUT %s by %q answered %d, want by %s answered 200", r.Path, r.Identity, r.Status, dep)
			}
		}
	}
	if puts != len(values) {
		t.Errorf("the server saw %d PUTs of %s, want %d", puts, paramID, len(values))
	}

	// A wrong secret makes the example fail and leaves the value alone.
	bad := append([]string(nil), env...)
	for i, kv := range bad {
		if strings.HasPrefix(kv, "NUVLA_API_SECRET=") {
			bad[i] = "NUVLA_API_SECRET=wrong0.wrong0.wrong0.wrong0.wrong0"
		}
	}
	if _, err := run(bad, name, "never"); err == nil {
		t.Error("the example exited 0 with a wrong secret")
	}
	// So does a parameter the module did not declare (404 on the edit).
	if _, err := run(env, "undeclared", "never"); err == nil {
		t.Error("the example exited 0 for a parameter that does not exist")
	}
	if p, _ := srv.Resource(paramID); p["value"] != values[len(values)-1] {
		t.Errorf("after a failed run the value is %#v", p["value"])
	}
}

func client(t *testing.T, endpoint string) *nuvla.Client {
	t.Helper()
	c, err := nuvla.New(nuvla.Options{Endpoint: endpoint, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}
