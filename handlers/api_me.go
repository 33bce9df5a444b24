package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// selectionItem is an image of a user's selection, marked when an
// administrator made it (a System image) rather than one of their groups.
type selectionItem struct {
	*store.Image
	System bool `json:"system"`
}

// apiMyImages lists the images the caller may start.
func (s *Server) apiMyImages(c echo.Context) error {
	imgs, err := s.store.Selection(c.Request().Context(), currentUser(c).Username)
	if err != nil {
		return err
	}
	items := make([]selectionItem, len(imgs))
	for i, img := range imgs {
		items[i] = selectionItem{Image: img, System: img.Owner == store.OwnerSystem}
	}
	return c.JSON(http.StatusOK, newList(items, len(items)))
}
