package handlers

import (
	"net/http"
	"strconv"

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
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderImageForm(c, http.StatusUnprocessableEntity, views.ImageFormProps{
			Kind: views.KindBuild, Values: v, Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	if err := s.addFlash(c, "Image "+img.DisplayName+" added as "+img.Name+"; its first build is queued."); err != nil {
		return err
	}
	return seeOther(c, sc.BuildPath(b.ID))
}

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
		Page: s.page(c, "Build #"+strconv.FormatInt(b.ID, 10)+" of "+img.DisplayName, sc.Nav()), Scope: sc, Build: b, Image: img,
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
	if err := s.addFlash(c, "Build #"+strconv.FormatInt(b.ID, 10)+" cancelled."); err != nil {
		return err
	}
	return seeOther(c, scopeOf(c).BuildPath(b.ID))
}

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
