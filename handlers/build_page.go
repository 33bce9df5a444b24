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

// buildPage shows one build with its live log and, once it succeeded, its
// packages and what changed in them since the image's previous successful
// build. htmx requests (the package table's search and page links) get the
// package table only.
func (s *Server) buildPage(c echo.Context) error {
	b, img, err := s.scopedBuild(c)
	if err != nil {
		return err
	}
	sc := scopeOf(c)
	p := views.BuildPageProps{
		Page: s.page(c, "Build #"+strconv.FormatInt(b.ID, 10)+" of "+img.DisplayName, sc.Nav()), Scope: sc, Build: s.withWaiting(b)[0], Image: img,
	}
	if b.PackageCount != nil {
		if p.Packages, err = s.buildPackagesProps(c, sc, b.ID); err != nil {
			return err
		}
		if isHTMX(c) {
			return render(c, http.StatusOK, views.PackagesTable(*p.Packages))
		}
		if p.Changes, err = s.changesSince(c, b); err != nil {
			return err
		}
	}
	return render(c, http.StatusOK, views.BuildPage(p))
}

// buildProgress is the build page's progress bar alone, which the page
// polls while the build is active. A poll of a fragment rather than an event
// of the log's stream: the stream's events are the log's numbered lines,
// which a viewer resumes from by number, while progress is a state whose
// latest value is all that counts, and whose ETA changes as time passes
// with no event at all; the fragment reads the store, as the JSON does, and
// stops polling by itself once the build has ended.
func (s *Server) buildProgress(c echo.Context) error {
	b, _, err := s.scopedBuild(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.BuildProgress(views.BuildProgressProps{Scope: scopeOf(c), Build: b}))
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
