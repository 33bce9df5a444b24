package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// editImageForm shows the edit form filled from the stored image.
func (s *Server) editImageForm(c echo.Context) error {
	img, err := s.scopedImage(c.Request().Context(), scopeOf(c), c.Param("name"))
	if err != nil {
		return err
	}
	return s.renderImageForm(c, http.StatusOK, views.ImageFormProps{
		Kind: kindOf(img), Name: img.Name, Owner: img.Owner, Values: views.ImageValuesOf(img),
	})
}

// updateImage saves the edit form. The name never changes; a custom image
// keeps its recipe.
func (s *Server) updateImage(c echo.Context) error {
	ctx, sc := c.Request().Context(), scopeOf(c)
	old, err := s.scopedImage(ctx, sc, c.Param("name"))
	if err != nil {
		return err
	}
	v, err := imageFormValues(c)
	if err != nil {
		return err
	}
	img := scopedImageOf(sc, v)
	img.Name, img.Owner, img.Recipe = old.Name, old.Owner, old.Recipe
	if old.Owner != store.OwnerSystem {
		// A group's own image is its group's alone, whoever edits it: its
		// form offers neither Global nor groups (group names sent are
		// refused by checkImageChange).
		img.Global = false
	}
	if old.Recipe != nil {
		// A custom image's URL is what its last good build pushed, and the
		// form has no URL fields for it.
		img.URL, img.URLForGPU, img.UseGPUURL, img.PullSecret = old.URL, old.URLForGPU, old.UseGPUURL, old.PullSecret
	}
	ch := &imageChange{before: old, after: img, form: &v}
	err = s.checkImageChange(c, ch)
	if err == nil {
		err = s.store.UpdateImage(ctx, img)
	}
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderImageForm(c, http.StatusUnprocessableEntity, views.ImageFormProps{
			Kind: kindOf(old), Name: old.Name, Owner: old.Owner, Values: v, Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	s.addFlash(c, append([]string{"Image " + img.DisplayName + " saved."}, ch.notices...)...)
	return seeOther(c, sc.ImagePath(img.Name))
}
