package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/views"
)

// imagePage shows one image and, for a custom image, its builds and the
// comparison of two of them (?from= and ?to=; see compareProps).
func (s *Server) imagePage(c echo.Context) error {
	ctx, sc := c.Request().Context(), scopeOf(c)
	img, err := s.scopedImage(ctx, sc, c.Param("name"))
	if err != nil {
		return err
	}
	p := views.ImagePageProps{Page: s.page(c, img.DisplayName, sc.Nav()), Scope: sc, Image: img}
	status := http.StatusOK
	if img.Recipe != nil {
		if p.Builds, err = s.store.ListBuilds(ctx, img.Name); err != nil {
			return err
		}
		active, err := s.store.ActiveBuilds(ctx, img.Name)
		if err != nil {
			return err
		}
		p.Active = s.withWaiting(active[img.Name])[0]
		if p.Compare, status, err = s.compareProps(c, img.Name, p.Builds); err != nil {
			return err
		}
	}
	return render(c, status, views.ImagePage(p))
}
