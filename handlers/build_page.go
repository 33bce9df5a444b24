package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// scopedBuild returns the build of the :id parameter and its image when the
// request's scope holds the image (see scopedImage).
func (s *Server) scopedBuild(c echo.Context) (*store.Build, *store.Image, error) {
	id, err := buildParam(c)
	if err != nil {
		return nil, nil, err
	}
	ctx := c.Request().Context()
	b, err := s.store.FindBuild(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	img, err := s.scopedImage(ctx, scopeOf(c), b.Image)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return nil, nil, store.Errorf(store.ENOTFOUND, "Build %d not found among the builds of %q.", id, scopeOf(c).Group)
	}
	return b, img, err
}

// buildPage shows one build with its live log.
func (s *Server) buildPage(c echo.Context) error {
	b, img, err := s.scopedBuild(c)
	if err != nil {
		return err
	}
	sc := scopeOf(c)
	return render(c, http.StatusOK, views.BuildPage(views.BuildPageProps{
		Page: s.page(c, "Build #"+strconv.FormatInt(b.ID, 10)+" of "+img.DisplayName, sc.Nav()), Scope: sc, Build: s.withWaiting(b)[0], Image: img,
	}))
}

// cancelBuildForm is the build page's Cancel Build button.
func (s *Server) cancelBuildForm(c echo.Context) error {
	b, _, err := s.scopedBuild(c)
	if err != nil {
		return err
	}
	if err := s.cancelBuild(c.Request().Context(), b.ID); err != nil {
		return err
	}
	s.addFlash(c, "Build #"+strconv.FormatInt(b.ID, 10)+" cancelled.")
	return seeOther(c, scopeOf(c).BuildPath(b.ID))
}
