package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"imagehub/buildah/basecheck"
	"imagehub/store"
)

// checkBase compares the base of an image's current build with what its
// registry names now (basecheck.Checker.Check), within checkTimeout. A
// registry that does not answer is an EUPSTREAM error (502) with the
// registry's own reason for an administrator and a generic sentence for
// anyone else, as for the Check button; the image's mark stays as it was.
func (s *Server) checkBase(c echo.Context, name string) (*store.Image, error) {
	if s.baseCheck == nil {
		return nil, store.Errorf(store.ECONFLICT, "Base checks are off on this server.")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), checkTimeout)
	defer cancel()
	img, err := s.baseCheck.Check(ctx, name)
	var regErr *basecheck.RegistryError
	if !errors.As(err, &regErr) {
		return img, err
	}
	if u := currentUser(c); u == nil || !u.Admin {
		s.log.Warn("base check failed", "image", name, "base", regErr.Reference, "err", regErr.Err)
		return nil, store.Errorf(store.EUPSTREAM, "Checking the base image %s failed. %s", regErr.Reference, checkUnreachable)
	}
	return nil, store.Errorf(store.EUPSTREAM, "%s", sentence(regErr.Error()))
}

// apiBaseCheck compares an image's base with its registry and answers the
// image, with "baseDigest", "baseLatestDigest", "baseCheckedAt" and
// "baseUpdateAvailable"; 502 when the registry does not answer.
func (s *Server) apiBaseCheck(c echo.Context) error {
	img, err := s.checkBase(c, c.Param("name"))
	if err != nil {
		return err
	}
	body, err := s.withLatestBuild(c, img)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, body)
}

// baseCheckForm is the image page's Check base button: the page again,
// with what the check found (or why it failed) as a notice.
func (s *Server) baseCheckForm(c echo.Context) error {
	sc := scopeOf(c)
	img, err := s.scopedImage(c.Request().Context(), sc, c.Param("name"))
	if err != nil {
		return err
	}
	checked, err := s.checkBase(c, img.Name)
	switch code := store.ErrorCode(err); {
	case code == store.EUPSTREAM || code == store.ECONFLICT:
		s.addFlash(c, store.ErrorMessage(err))
	case err != nil:
		return err
	case checked.BaseUpdateAvailable:
		s.addFlash(c, "The base image has moved since this image was built: an update is available.")
	default:
		s.addFlash(c, "The base image has not moved since this image was built.")
	}
	return seeOther(c, sc.ImagePath(img.Name))
}

// baseRebuildForm is the one click of an image whose base moved: a build of
// the same recipe, which builds on the base as it is now.
func (s *Server) baseRebuildForm(c echo.Context) error {
	sc := scopeOf(c)
	img, err := s.scopedImage(c.Request().Context(), sc, c.Param("name"))
	if err != nil {
		return err
	}
	b, err := s.rebuild(c, img.Name, nil, nil)
	if err != nil {
		return err
	}
	s.addFlash(c, "Build #"+strconv.FormatInt(b.ID, 10)+" queued: the same recipe, on the base image as it is now.")
	return seeOther(c, sc.BuildPath(b.ID))
}
