package catalog

import (
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		in   string
		want []challenge
	}{
		{`Basic realm="Registry Realm"`, []challenge{{"basic", map[string]string{"realm": "Registry Realm"}}}},
		{
			`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"`,
			[]challenge{{"bearer", map[string]string{
				"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/nginx:pull",
			}}},
		},
		{
			`Bearer realm="https://h/service/token", service="harbor-registry", scope="repository:a/b:pull,push"`,
			[]challenge{{"bearer", map[string]string{
				"realm": "https://h/service/token", "service": "harbor-registry", "scope": "repository:a/b:pull,push",
			}}},
		},
		{
			`Basic realm=x, Bearer realm="r",service=s`,
			[]challenge{
				{"basic", map[string]string{"realm": "x"}},
				{"bearer", map[string]string{"realm": "r", "service": "s"}},
			},
		},
		{`Bearer realm="a \"quoted\" realm"`, []challenge{{"bearer", map[string]string{"realm": `a "quoted" realm`}}}},
		{`Negotiate`, []challenge{{"negotiate", map[string]string{}}}},
		{"", nil},
		{`Bearer realm="unterminated`, []challenge{{"bearer", map[string]string{"realm": "unterminated"}}}},
	}
	for _, tt := range tests {
		got := parseChallenges(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseChallenges(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestNextLink(t *testing.T) {
	base, _ := url.Parse("https://reg.example:5000")
	tests := []struct {
		link string
		want string
	}{
		{`</v2/_catalog?last=b&n=100>; rel="next"`, "https://reg.example:5000/v2/_catalog?last=b&n=100"},
		{`</api/v2.0/projects?page=1&page_size=10>; rel="prev" , </api/v2.0/projects?page=3&page_size=10>; rel="next"`,
			"https://reg.example:5000/api/v2.0/projects?page=3&page_size=10"},
		{`</api/v2.0/projects?page=1>; rel="prev"`, ""},
		{"", ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.link != "" {
			h.Set("Link", tt.link)
		}
		if got := nextLink(base, h); got != tt.want {
			t.Errorf("nextLink(%q) = %q, want %q", tt.link, got, tt.want)
		}
	}
}

func TestParseTypes(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"notebook,headless", []string{"notebook", "headless"}},
		{"headless, notebook", []string{"notebook", "headless"}},
		{"Desktop-App;carta", []string{"carta", "desktop-app"}},
		{"notebook,notebook,firefly,", []string{"notebook"}},
		{"", []string{}},
		{"deprecated", []string{}},
	}
	for _, tt := range tests {
		if got := ParseTypes(tt.in); !slices.Equal(got, tt.want) || got == nil {
			t.Errorf("ParseTypes(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestLoginURLs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"registry.example.com", []string{"https://registry.example.com"}, false},
		{"registry.example.com:5000/", []string{"https://registry.example.com:5000"}, false},
		{"http://10.0.0.2:5000/v2/", []string{"http://10.0.0.2:5000"}, false},
		{"127.0.0.1:5000", []string{"https://127.0.0.1:5000", "http://127.0.0.1:5000"}, false},
		{"localhost:5000", []string{"https://localhost:5000", "http://localhost:5000"}, false},
		{"docker.io", []string{"https://registry-1.docker.io"}, false},
		{"ftp://x", nil, true},
		{"host/path", nil, true},
		{"user@host", nil, true},
	}
	for _, tt := range tests {
		us, err := loginURLs(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("loginURLs(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		var got []string
		for _, u := range us {
			got = append(got, u.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("loginURLs(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCheckNameAndHeaderSafe(t *testing.T) {
	for _, ok := range []string{"hub", "my-reg_1.example"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "a b", strings.Repeat("x", 129), "é"} {
		if err := checkName(bad); err == nil {
			t.Errorf("checkName(%q) accepted", bad)
		}
	}
	if got := headerSafe("a\nb\tcé"); got != "a b c " {
		t.Errorf("headerSafe = %q", got)
	}
}

func TestManifestPick(t *testing.T) {
	type plat = struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	}
	m := manifestDoc{}
	add := func(d string, p *plat) {
		m.Manifests = append(m.Manifests, struct {
			Digest   string `json:"digest"`
			Platform *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		}{d, p})
	}
	add("att", &plat{"unknown", "unknown"})
	add("s390", &plat{"linux", "s390x"})
	if got := m.pick(); got != "s390" {
		t.Errorf("pick = %q, want the first linux entry", got)
	}
	add("here", &plat{"linux", hostArch()})
	if got := m.pick(); got != "here" {
		t.Errorf("pick = %q, want this machine's", got)
	}
}

func hostArch() string { return runtime.GOARCH }
