package frontend

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestFilesAreEmbedded(t *testing.T) {
	for _, name := range []string{"index.html", "style.css", "app.js", "favicon.svg"} {
		b, err := fs.ReadFile(FS(), name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
}

// The page must work under "Content-Security-Policy: default-src 'self'"
// and load nothing from the network.
func TestPageFitsTheCSP(t *testing.T) {
	html, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	if regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`).MatchString(page) {
		t.Error("index.html has an inline script")
	}
	if regexp.MustCompile(`(?i)\sstyle\s*=|<style`).MatchString(page) {
		t.Error("index.html has inline styles")
	}
	if regexp.MustCompile(`(?i)\son[a-z]+\s*=`).MatchString(page) {
		t.Error("index.html has an inline event handler")
	}
	for _, name := range []string{"index.html", "style.css"} {
		b, _ := fs.ReadFile(FS(), name)
		if strings.Contains(string(b), "://") || strings.Contains(string(b), "@import") {
			t.Errorf("%s refers to a resource outside the box", name)
		}
	}
	js, _ := fs.ReadFile(FS(), "app.js")
	if strings.Contains(string(js), "innerHTML") || strings.Contains(string(js), "eval(") {
		t.Error("app.js must build the page with textContent, not innerHTML or eval")
	}
}
