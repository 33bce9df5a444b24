// Package static holds the files the pages load as they are: the vendored
// htmx 2 library (htmx.min.js), imagehub's style sheet (app.css) and the
// build page's log follower (buildlog.js, a plain EventSource that appends
// each line as text). They are embedded so that the binary is all there is
// to deploy.
package static

import (
	"embed"
	"io/fs"
)

//go:embed htmx.min.js app.css buildlog.js
var files embed.FS

// FS returns the embedded files, named as they are in this folder
// ("htmx.min.js", "app.css", "buildlog.js").
func FS() fs.FS { return files }
