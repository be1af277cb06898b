package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// Secrets must never reach a log line or a formatted string.
func TestSecretsAreNeverShown(t *testing.T) {
	const (
		boxSecret = "box-secret-0xDEADBEEF"
		depSecret = "deployment-secret-0xFEED"
		regSecret = "registry-password-0xCAFE"
		envSecret = "env-secret-0xBEEF"
		outSecret = "jupyter-token-0xF00D"
	)
	id := Identity{NuvlaboxID: "nuvlabox/1", APIKey: "credential/box", APISecret: boxSecret}
	creds := DeploymentCredentials{APIKey: "credential/dep", APISecret: depSecret}
	app := testApp("app-1")
	app.Credentials = &creds
	app.App.Services[0].Env["PASSWORD"] = envSecret
	app.Params = map[string]string{"token": outSecret}
	reg := RegistryCredential{Name: "ghcr", Server: "ghcr.io", Username: "bot", Password: regSecret}

	values := map[string]any{
		"Identity":              id,
		"*Identity":             &id,
		"DeploymentCredentials": creds,
		"AppRecord":             app,
		"*AppRecord":            &app,
		"RegistryCredential":    reg,
		"*RegistryCredential":   &reg,
		"nested": struct {
			ID  Identity
			Reg []RegistryCredential
		}{id, []RegistryCredential{reg}},
	}
	secrets := []string{boxSecret, depSecret, regSecret, envSecret, outSecret}
	for name, v := range values {
		var out strings.Builder
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
		out.Write(buf.Bytes())
		for _, sec := range secrets {
			if strings.Contains(out.String(), sec) {
				t.Errorf("%s reveals a secret:\n%s", name, out.String())
			}
		}
		// JSON (what a JSON log handler does with a nested value, and what
		// the local API serves) hides the credentials; an app's environment
		// and parameters are its content and stay.
		js, err := json.Marshal(v)
		if err != nil {
			t.Errorf("%s: json.Marshal: %v", name, err)
		}
		for _, sec := range []string{boxSecret, depSecret, regSecret} {
			if strings.Contains(string(js), sec) {
				t.Errorf("%s: JSON reveals a secret: %s", name, js)
			}
		}
		if !strings.Contains(out.String(), redacted) {
			t.Errorf("%s does not show that a secret is set:\n%s", name, out.String())
		}
	}
	// The non-secret parts stay useful.
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "app", app, "identity", id)
	for _, want := range []string{"app-1", "credential/dep", "nuvlabox/1", "desired=running"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line lacks %q: %s", want, buf.String())
		}
	}
}
