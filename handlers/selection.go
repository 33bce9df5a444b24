package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/views"
)

// selectionPage lists the images the signed-in user may start.
func (s *Server) selectionPage(c echo.Context) error {
	imgs, err := s.store.Selection(c.Request().Context(), currentUser(c).Username)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.Selection(views.SelectionProps{
		Page:   s.page(c, "My images", views.NavMyImages),
		Images: imgs,
	}))
}
