package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// rebuildForm shows a custom image's recipe to edit before a rebuild: that
// of the build in ?from= ("View build details" → edit), else the image's.
func (s *Server) rebuildForm(c echo.Context) error {
	ctx := c.Request().Context()
	img, err := s.scopedImage(ctx, scopeOf(c), c.Param("name"))
	if err != nil {
		return err
	}
	if img.Recipe == nil {
		return store.Errorf(store.ECONFLICT, "Image %q is not a custom image: it has no recipe to rebuild.", img.Name)
	}
	p := views.RebuildProps{Image: img, Values: views.RecipeValues(*img.Recipe)}
	if from, _ := strconv.ParseInt(c.QueryParam("from"), 10, 64); from > 0 {
		b, err := s.store.FindBuild(ctx, from)
		if err != nil {
			return err
		}
		if b.Image != img.Name {
			return store.Errorf(store.ENOTFOUND, "Build %d is not a build of %q.", from, img.Name)
		}
		p.From, p.Values = from, views.RecipeValues(b.Recipe)
	}
	return s.renderRebuild(c, http.StatusOK, p)
}

// startRebuild queues a build from the edited recipe and shows it.
func (s *Server) startRebuild(c echo.Context) error {
	ctx, sc := c.Request().Context(), scopeOf(c)
	img, err := s.scopedImage(ctx, sc, c.Param("name"))
	if err != nil {
		return err
	}
	v, err := imageFormValues(c)
	if err != nil {
		return err
	}
	recipe := v.RecipeOf()
	b, err := s.rebuild(c, img.Name, &recipe, &v)
	if store.ErrorCode(err) == store.EINVALID || store.ErrorCode(err) == store.ECONFLICT {
		errs := store.ErrorFields(err)
		if errs == nil {
			errs = map[string]string{"": store.ErrorMessage(err)}
		}
		return s.renderRebuild(c, http.StatusUnprocessableEntity, views.RebuildProps{Image: img, Values: v, Errors: errs})
	} else if err != nil {
		return err
	}
	return seeOther(c, sc.BuildPath(b.ID))
}

func (s *Server) renderRebuild(c echo.Context, status int, p views.RebuildProps) error {
	ctx := c.Request().Context()
	var err error
	if p.Secrets, err = s.store.ListSecrets(ctx); err != nil {
		return err
	}
	if p.BaseImages, err = s.baseImages(ctx); err != nil {
		return err
	}
	p.Scope = scopeOf(c)
	p.Page = s.page(c, "Rebuild "+p.Image.DisplayName, p.Scope.Nav())
	return render(c, status, views.RebuildForm(p))
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
	b, err := s.queueBuild(ctx, &after, *after.Recipe, ch.packages)
	if err == nil && form != nil {
		s.addFlash(c, ch.notices...)
	}
	return b, err
}
