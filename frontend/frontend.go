// Package frontend is berth's web UI: plain HTML, CSS and JavaScript with no
// build step and no resource from the network. berthd serves it on its web
// listener and socket; berth-desktop shows it in its window. It talks to the
// local API with fetch('/api/v1/...') only.
package frontend

import (
	"embed"
	"io/fs"
)

//go:embed index.html style.css app.js favicon.svg
var files embed.FS

// FS returns the UI's files, index.html at the root.
func FS() fs.FS { return files }
