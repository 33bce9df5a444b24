package handlers

import (
	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// createCustomImage creates the custom image of ch (ch.after, with its
// recipe) once checkImageChange has passed it, and queues its first build.
// The image is pulled with the push secret of the registry it will be
// pushed to. When the build cannot be recorded the image is removed again,
// so that no half-made custom image stays behind.
func (s *Server) createCustomImage(c echo.Context, ch *imageChange) (*store.Build, error) {
	if err := s.checkImageChange(c, ch); err != nil {
		return nil, err
	}
	ctx, img := c.Request().Context(), ch.after
	img.PullSecret = s.pushSecret
	if err := s.store.CreateImage(ctx, img); err != nil {
		return nil, err
	}
	b, err := s.queueBuild(ctx, img, *img.Recipe, ch.packages)
	if err != nil {
		if derr := s.store.DeleteImage(ctx, img.Name); derr != nil {
			s.log.Error("remove image after failed build", "image", img.Name, "err", derr)
		}
		return nil, err
	}
	return b, nil
}

// rebuild queues a new build of a custom image, from r when given (which
// then becomes the image's recipe) or else from its current recipe, once
// checkImageChange has passed it; form is the rebuild form's values, nil for
// the API. While another build of the image waits or runs, the store
// refuses it (409).
func (s *Server) rebuild(c echo.Context, name string, r *store.Recipe, form *views.ImageValues) (*store.Build, error) {
	ctx := c.Request().Context()
	img, err := s.store.FindImage(ctx, name)
	if err != nil {
		return nil, err
	}
	if img.Recipe == nil {
		return nil, store.Errorf(store.ECONFLICT, "Image %q is not a custom image: it has no recipe to build.", name)
	}
	after := *img
	if r != nil {
		after.Recipe = r
	}
	ch := &imageChange{before: img, after: &after, build: true, form: form}
	if err := s.checkImageChange(c, ch); err != nil {
		return nil, err
	}
	return s.queueBuild(ctx, &after, *after.Recipe, ch.packages)
}
