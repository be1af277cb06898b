package nuvlatest

import (
	"testing"
	"time"
)

func TestFilterParseErrors(t *testing.T) {
	bad := []string{
		"state=",
		"='x'",
		"state='x' and",
		"(state='x'",
		"state='x')",
		"state 'x'",
		"state='unterminated",
		"state<true",
		"state^=1",
		"1abc='x'",
		"state='a' or or b='c'",
		"a-='x'",
		"state=[]",
		"state='x' foo='y'",
		"state~'x'",
	}
	for _, f := range bad {
		if _, err := parseFilter(f); err == nil {
			t.Errorf("parseFilter(%q) succeeded, want error", f)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	now := time.Date(2025, 8, 21, 10, 15, 0, 0, time.UTC)
	doc := map[string]any{
		"id":              "job/1",
		"state":           "RUNNING",
		"action":          "start_deployment",
		"execution-mode":  "pull",
		"progress":        normalize(40),
		"online":          true,
		"created":         "2025-08-21T10:14:00.000Z",
		"next-heartbeat":  "2025-08-21T10:14:30.000Z",
		"target-resource": map[string]any{"href": "deployment/abc"},
		"affected-resources": []any{
			map[string]any{"href": "deployment/abc"},
			map[string]any{"href": "credential/k"},
		},
		"capabilities": []any{"NUVLA_HEARTBEAT", "NUVLA_JOB_PULL"},
		"parent":       "deployment/abc",
		"name":         "web.tcp.80",
		"node-id":      "web",
		"acl:owner":    "x",
	}
	cases := []struct {
		filter string
		want   bool
	}{
		{"", true},
		{"state='RUNNING'", true},
		{`state="RUNNING"`, true},
		{"state='QUEUED'", false},
		{"state!='QUEUED'", true},
		{"state!='RUNNING'", false},
		{"'RUNNING'=state", true},
		{"state='QUEUED' or state='RUNNING'", true},
		{"state='RUNNING' and execution-mode='push'", false},
		{"execution-mode='pull' and (state='QUEUED' or state='RUNNING')", true},
		{"(execution-mode='push' or state='RUNNING') and action^='start'", true},
		{"action^='stop'", false},
		{"target-resource/href='deployment/abc'", true},
		{"affected-resources/href='credential/k'", true},
		{"affected-resources/href='credential/z'", false},
		{"capabilities='NUVLA_JOB_PULL'", true},
		{"missing=null", true},
		{"missing!=null", false},
		{"state=null", false},
		{"state!=null", true},
		{"progress=40", true},
		{"progress>39", true},
		{"progress>=41", false},
		{"progress<41 and progress<=40", true},
		{"50>progress", true},
		{"online=true", true},
		{"online=false", false},
		{"next-heartbeat<'now'", true},
		{"next-heartbeat<'now-60s'", false},
		{"next-heartbeat>'now-1m'", true},
		{"created<2025-08-21T10:15:00Z", true},
		{"created>'2025-08-21T10:14:00Z'", false},
		{"created='2025-08-21T10:14:00Z'", true},
		{"created>=2025-08-21", true},
		{"name>'web'", true},
		{"name<'web'", false},
		{"state=['QUEUED' 'RUNNING']", true},
		{"state=['QUEUED','SUCCESS']", false},
		{"state!=['QUEUED' 'SUCCESS']", true},
		{"parent='deployment/abc' and name='web.tcp.80' and node-id='web'", true},
		{"acl:owner='x'", true},
		{"action=='DEPLOY'", true},
		{`state="RUN\"NING"`, false},
	}
	env := &evalEnv{now: now}
	for _, c := range cases {
		n, err := parseFilter(c.filter)
		if err != nil {
			t.Errorf("parseFilter(%q): %v", c.filter, err)
			continue
		}
		if got := n.match(doc, env); got != c.want {
			t.Errorf("filter %q = %v, want %v", c.filter, got, c.want)
		}
	}
}

func TestResolveDate(t *testing.T) {
	now := time.Date(2025, 8, 21, 10, 15, 30, 0, time.UTC)
	cases := map[string]time.Time{
		"now":        now,
		"now-60s":    now.Add(-time.Minute),
		"now+1h":     now.Add(time.Hour),
		"now-1d/d":   time.Date(2025, 8, 20, 0, 0, 0, 0, time.UTC),
		"now-2m+10s": now.Add(-110 * time.Second),
	}
	for expr, want := range cases {
		got, ok := resolveDate(expr, now)
		if !ok || !got.Equal(want) {
			t.Errorf("resolveDate(%q) = %v, %v; want %v", expr, got, ok, want)
		}
	}
}

func TestOrderAndPage(t *testing.T) {
	docs := []map[string]any{
		{"id": "x/1", "n": normalize(3)},
		{"id": "x/2"},
		{"id": "x/3", "n": normalize(1)},
		{"id": "x/4", "n": normalize(2)},
	}
	sortDocs(docs, []orderKey{{field: []string{"n"}, desc: true}})
	var ids []string
	for _, d := range docs {
		ids = append(ids, str(d["id"]))
	}
	if want := "x/1 x/4 x/3 x/2"; join(ids) != want {
		t.Fatalf("desc order = %s, want %s", join(ids), want)
	}
	p := &cimiParams{first: 2, last: 3}
	got := page(docs, p)
	if len(got) != 2 || str(got[0]["id"]) != "x/4" || str(got[1]["id"]) != "x/3" {
		t.Fatalf("page(2..3) = %v", got)
	}
	if len(page(docs, &cimiParams{first: 1, last: 0})) != 0 {
		t.Fatal("last=0 should return no documents")
	}
}

func join(s []string) string {
	out := ""
	for i, e := range s {
		if i > 0 {
			out += " "
		}
		out += e
	}
	return out
}
