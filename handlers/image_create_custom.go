package handlers

import (
	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// createCustomImageForm handles "Build custom image": the image and its
// recipe are checked together (every bad field and line is shown at once),
// then the image is created, its first build queued, and the browser sent
// to the build's page to watch it.
func (s *Server) createCustomImageForm(c echo.Context, v views.ImageValues) error {
	sc := scopeOf(c)
	img := scopedImageOf(sc, views.ImageValues{
		DisplayName: v.DisplayName, Description: v.Description, Type: v.Type, Global: v.Global, Groups: v.Groups,
	})
	recipe := v.RecipeOf()
	img.Recipe = &recipe
	b, err := s.createCustomImage(c, &imageChange{after: img, build: true, form: &v})
	if code := store.ErrorCode(err); code == store.EINVALID || code == store.ECONFLICT {
		// A conflict (such as the group's limit of builds) is told above
		// the form, with the values kept.
		errs := store.ErrorFields(err)
		if errs == nil {
			errs = map[string]string{"": store.ErrorMessage(err)}
		}
		return s.renderImageForm(c, statusOf(code), views.ImageFormProps{
			Kind: views.KindBuild, Values: v, Errors: errs,
		})
	} else if err != nil {
		return err
	}
	s.addFlash(c, "Image "+img.DisplayName+" added as "+img.Name+"; its first build is queued.")
	return seeOther(c, sc.BuildPath(b.ID))
}

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
