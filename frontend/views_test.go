package frontend

import (
	"io/fs"
	"strings"
	"testing"
)

// Every view has its section and a nav link with its shortcut key, and
// the page tells the desktop app when the Apps list is first painted.
func TestViewsAndShortcuts(t *testing.T) {
	html, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	for i, v := range []string{"apps", "launch", "box", "telemetry", "logs"} {
		for _, want := range []string{
			`<section id="view-` + v + `"`,
			`href="#` + v + `" data-view="` + v + `" aria-keyshortcuts="` + string(rune('1'+i)) + `"`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("index.html lacks %s", want)
			}
		}
	}
	js, _ := fs.ReadFile(FS(), "app.js")
	for _, want := range []string{`app.Painted("apps")`, `new EventSource("/api/v1/events")`, "BrowserOpenURL"} {
		if !strings.Contains(string(js), want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
}
