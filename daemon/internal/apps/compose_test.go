package apps

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/compose")

// composeEnv is the interpolation environment of every corpus case.
var composeEnv = map[string]string{
	"NUVLA_DEPLOYMENT_ID":   "deployment/7e1d2a3b-0000-4000-8000-000000000001",
	"NUVLA_DEPLOYMENT_UUID": "7e1d2a3b-0000-4000-8000-000000000001",
	"NUVLA_API_KEY":         "credential/key",
	"NUVLA_ENDPOINT":        "https://nuvla.example",
	"GREETING":              "hello",
}

// TestComposeCorpus converts every compose file under testdata/compose and
// compares the App (or the error) with the golden file next to it:
// app.golden.json for a file that converts, error.golden for one that is
// rejected. Run with -update to rewrite the golden files.
func TestComposeCorpus(t *testing.T) {
	dirs, err := filepath.Glob("testdata/compose/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, ComposeFileName))
			if err != nil {
				t.Fatal(err)
			}
			app, err := FromCompose(context.Background(), ComposeInput{
				AppID: "7e1d2a3b-0000-4000-8000-000000000001", Name: filepath.Base(dir), Dir: abs, Env: composeEnv,
				Outputs: []OutputParameter{{Name: "out"}},
				Swarm:   strings.HasPrefix(string(raw), "# x-berth-swarm"),
			})
			var got []byte
			golden := filepath.Join(dir, "app.golden.json")
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("error is not a ValidationError: %v", err)
				}
				golden = filepath.Join(dir, "error.golden")
				got = []byte(err.Error() + "\n")
			} else {
				got, _ = json.MarshalIndent(app, "", "  ")
				got = append(got, '\n')
			}
			// Paths are machine-specific: the corpus directory becomes $DIR.
			got = []byte(strings.ReplaceAll(string(got), abs, "$DIR"))
			if *update {
				_ = os.Remove(filepath.Join(dir, "app.golden.json"))
				_ = os.Remove(filepath.Join(dir, "error.golden"))
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (got:\n%s)", rerr, got)
			}
			if string(want) != string(got) {
				t.Errorf("%s differs (run go test -run TestComposeCorpus -update):\n got %s\nwant %s", golden, got, want)
			}
		})
	}
}
