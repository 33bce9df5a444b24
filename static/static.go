// Package static holds the files the pages load as they are: the vendored
// htmx 2 library (htmx.min.js), its Server-Sent Events extension (sse.js)
// and imagehub's style sheet. They are embedded so that the binary is all
// there is to deploy.
package static

import (
	"embed"
	"io/fs"
)

//go:embed htmx.min.js sse.js app.css buildlog.js
var files embed.FS

// FS returns the embedded files, named as they are in this folder
// ("htmx.min.js", "sse.js", "app.css").
func FS() fs.FS { return files }
