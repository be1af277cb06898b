package apps

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPlanOrdersCreatesByDependencies(t *testing.T) {
	app := &App{ID: "a", Services: []Service{
		{Name: "web", Image: "i", DependsOn: []Dependency{{Service: "api", Condition: ConditionHealthy}}},
		{Name: "api", Image: "i", DependsOn: []Dependency{{Service: "db", Condition: ConditionStarted}}},
		{Name: "db", Image: "i"},
		{Name: "other", Image: "i"},
	}}
	var got []string
	for _, a := range Plan(app, nil, ModeStart) {
		got = append(got, string(a.Type)+" "+a.Service)
	}
	want := "create db,create api,create web,create other,start db,start api,start web,start other"
	if strings.Join(got, ",") != want {
		t.Fatalf("plan = %v\nwant %s", got, want)
	}
}

func TestSpecHashStableForComponentServices(t *testing.T) {
	// The compose fields are omitted when empty: a component service's
	// hash is the one it had before they existed.
	s := Service{Name: "web", Image: "nginx", Restart: RestartPolicy{Condition: RestartNone}}
	b, _ := json.Marshal(s)
	if string(b) != `{"name":"web","image":"nginx","restart":{"condition":"none"}}` {
		t.Fatalf("component service marshals as %s", b)
	}
}

func TestParseApplication(t *testing.T) {
	a, err := ParseApplication(json.RawMessage(`{"docker-compose":"services: {}","environmental-variables":[{"name":"A","value":"1"},{"name":"B"}],
		"files":[{"file-name":"conf/x.conf","file-content":"x"}],"author":"me"}`))
	if err != nil {
		t.Fatal(err)
	}
	if env := a.Env(); len(env) != 1 || env["A"] != "1" {
		t.Errorf("Env = %v", env)
	}
	for _, bad := range []string{
		`{}`,
		`{"docker-compose":"x","files":[{"file-name":"../etc/passwd"}]}`,
		`{"docker-compose":"x","files":[{"file-name":"/abs"}]}`,
		`{"docker-compose":"x","files":[{"file-name":"docker-compose.yaml"}]}`,
		`{"docker-compose":"x","environmental-variables":[{"name":"1BAD"}]}`,
		`null`,
	} {
		if _, err := ParseApplication(json.RawMessage(bad)); err == nil {
			t.Errorf("ParseApplication(%s) accepted", bad)
		}
	}
}
