package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"

	"github.com/labstack/echo/v4"

	"imagehub/static"
)

// staticFiles serves the embedded htmx, the style sheet and the build
// page's log follower. The pages link them with ?v=<digest of the files>,
// and such a URL never changes its content, so browsers may keep it for a
// year; without the version they must ask again each time.
func (s *Server) staticFiles() echo.HandlerFunc {
	files := echo.StaticDirectoryHandler(static.FS(), true)
	return func(c echo.Context) error {
		cache := "no-cache"
		if v := c.QueryParam("v"); v != "" && v == s.staticVersion {
			cache = "public, max-age=31536000, immutable"
		}
		c.Response().Header().Set("Cache-Control", cache)
		return files(c)
	}
}

// staticDigest is a short digest of every embedded static file.
func staticDigest() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(static.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static.FS(), path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}
