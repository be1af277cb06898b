package jobs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = ok
	}{
		{``, ""},
		{`{"remove-volumes":true,"remove-images":false,"delete":true}`, ""},
		{`{not json`, "malformed job payload"},
		{`{"remove-volumes":"yes"}`, "remove-volumes must be a bool"},
		{`{"remove-volume":true}`, `unknown field "remove-volume"`},
		{`{} {}`, "trailing data"},
	}
	for _, tt := range tests {
		var p stopPayload
		err := decodePayload(tt.in, &p)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("decodePayload(%q) = %v", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("decodePayload(%q) = %v, want it to mention %q", tt.in, err, tt.want)
		}
	}
}

func TestDeploymentEnv(t *testing.T) {
	d := &Deployment{ID: "deployment/abc", APIEndpoint: "https://nuvla.example", DeploymentSet: "deployment-set/g1",
		APICredentials: &APICredentials{APIKey: "credential/k", APISecret: "s"}}
	env := deploymentEnv(d, "https://fallback", time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	want := map[string]string{
		"NUVLA_DEPLOYMENT_UUID": "abc", "NUVLA_DEPLOYMENT_ID": "deployment/abc",
		"NUVLA_API_KEY": "credential/k", "NUVLA_API_SECRET": "s", "NUVLA_ENDPOINT": "https://nuvla.example",
		"DATE_TIME": "260304050607", "TIMESTAMP": "1772600767",
		"NUVLA_DEPLOYMENT_GROUP_ID": "deployment-set/g1", "NUVLA_DEPLOYMENT_GROUP_UUID": "g1",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if len(env) != len(want) {
		t.Errorf("env has %d variables, want %d: %v", len(env), len(want), env)
	}
	d.APIEndpoint = ""
	if e := deploymentEnv(d, "https://fallback", time.Now()); e["NUVLA_ENDPOINT"] != "https://fallback" {
		t.Errorf("no fallback endpoint: %q", e["NUVLA_ENDPOINT"])
	}
}

func TestRegistryAuthFromContext(t *testing.T) {
	docs := jobContextDocs{
		"credential/r1":             json.RawMessage(`{"subtype":"infrastructure-service-registry","parent":"infrastructure-service/s1","username":"u","password":"p"}`),
		"infrastructure-service/s1": json.RawMessage(`{"subtype":"registry","endpoint":"https://registry.example.com:5000"}`),
		"credential/other":          json.RawMessage(`{"subtype":"infrastructure-service-swarm","parent":"infrastructure-service/s2"}`),
		"credential/orphan":         json.RawMessage(`{"subtype":"infrastructure-service-registry","parent":"infrastructure-service/missing","username":"x","password":"y"}`),
		"nuvlabox-status/x":         json.RawMessage(`{"ip":"10.0.0.5","network":{"ips":{"local":"10.0.0.5","vpn":""}}}`),
	}
	auth := docs.registryAuth()
	if len(auth) != 1 || auth["registry.example.com:5000"].Username != "u" || auth["registry.example.com:5000"].Password != "p" {
		t.Fatalf("registryAuth = %v", auth)
	}
	n := docs.network()
	if n.IP != "10.0.0.5" || n.Network.IPs["local"] != "10.0.0.5" {
		t.Fatalf("network = %+v", n)
	}
}

func TestToAppRejectsOtherSubtypes(t *testing.T) {
	for _, tt := range []struct{ subtype, want string }{
		{"application", "compose application"},
		{"application_kubernetes", "cannot run on a Docker box"},
		{"", "no module subtype"},
	} {
		d := &Deployment{ID: "deployment/x", Module: Module{ID: "module/m", Subtype: tt.subtype}}
		if _, err := toApp(d, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("subtype %q: %v, want %q", tt.subtype, err, tt.want)
		}
	}
}

func TestDeploymentTarget(t *testing.T) {
	for _, tt := range []struct {
		href string
		ok   bool
	}{{"deployment/abc", true}, {"nuvlabox/abc", false}, {"deployment/", false}, {"deployment/a/b", false}, {"", false}} {
		_, err := deploymentTarget(&Job{Action: "start_deployment", TargetResource: Href{tt.href}})
		if (err == nil) != tt.ok {
			t.Errorf("target %q: err = %v", tt.href, err)
		}
	}
}
