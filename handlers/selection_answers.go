package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// selectionAnswers keeps the JSON answers of the selection routes
// (/api/v1/me/images, /api/v1/groups/{group}/selection), by the groups they
// are for, while the catalogue keeps its version (store.CatalogueVersion).
// Notebook launchers ask for them at every page they show; they are the
// largest answers of the API (hundreds of images, a hundred kilobytes) and
// change only with the catalogue, so that encoding them anew each time was
// most of their cost.
type selectionAnswers struct {
	mu sync.Mutex
	// version is the catalogue version of the answers kept.
	version int64
	bodies  map[string][]byte
	// size is the length of the bodies together.
	size int
}

// maxSelectionAnswers bounds the bytes kept: past it, every answer is
// dropped and the keeping starts again.
const maxSelectionAnswers = 8 << 20

// get returns the answer kept for the groups at this catalogue version.
func (a *selectionAnswers) get(version int64, key string) ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	body, ok := a.bodies[key]
	return body, ok && a.version == version
}

// put keeps an answer made from the catalogue at this version (or a newer
// one); the answers of older versions are dropped.
func (a *selectionAnswers) put(version int64, key string, body []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if version < a.version {
		return
	}
	if version > a.version || a.bodies == nil || a.size+len(body) > maxSelectionAnswers {
		a.version, a.bodies, a.size = version, map[string][]byte{}, 0
	}
	if len(body) <= maxSelectionAnswers {
		a.bodies[key], a.size = body, a.size+len(body)
	}
}

// selectionKey names a set of groups, whatever their order.
func selectionKey(groups []string) string {
	sorted := slices.Clone(groups)
	slices.Sort(sorted)
	return strings.Join(slices.Compact(sorted), "\n")
}

// selectionAnswer answers a selection route for members of the groups with
// the images load returns, in the JSON list every list of the API has:
// the answer kept for these groups when the catalogue has not changed
// since, else a new one, which is kept. The version is read before load
// reads the catalogue, so that a kept answer is never older than its
// version. ?pretty is answered as c.JSON does, and not kept.
func (s *Server) selectionAnswer(c echo.Context, groups []string, load func(context.Context) ([]*store.Image, error)) error {
	ctx := c.Request().Context()
	if _, pretty := c.QueryParams()["pretty"]; pretty {
		imgs, err := load(ctx)
		if err != nil {
			return err
		}
		items := selectionItems(imgs)
		return c.JSON(http.StatusOK, newList(items, len(items)))
	}
	version, err := s.store.CatalogueVersion(ctx)
	if err != nil {
		return err
	}
	key := selectionKey(groups)
	body, ok := s.selections.get(version, key)
	if !ok {
		imgs, err := load(ctx)
		if err != nil {
			return err
		}
		items := selectionItems(imgs)
		if body, err = json.Marshal(newList(items, len(items))); err != nil {
			return err
		}
		// As the JSON encoder of every other answer ends it.
		body = append(body, '\n')
		s.selections.put(version, key, body)
	}
	return writeBody(c, http.StatusOK, echo.MIMEApplicationJSON, body)
}
