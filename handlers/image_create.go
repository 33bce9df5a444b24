package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// newImageForm shows the add form: an existing image, or (?kind=build) a
// custom build.
func (s *Server) newImageForm(c echo.Context) error {
	return s.renderImageForm(c, http.StatusOK, views.ImageFormProps{
		Kind:   c.QueryParam("kind"),
		Values: views.ImageValues{Type: string(store.TypeCPU)},
	})
}

// createImage adds an image from the add form. Bad fields bring the form
// back (422) with each reason at its field and the typed values kept.
func (s *Server) createImage(c echo.Context) error {
	v, err := imageFormValues(c)
	if err != nil {
		return err
	}
	kind := c.FormValue("kind")
	if kind == views.KindBuild {
		return s.createCustomImageForm(c, v)
	}
	sc := scopeOf(c)
	img := scopedImageOf(sc, v)
	err = s.checkImageChange(c, &imageChange{after: img, form: &v})
	if err == nil {
		err = s.store.CreateImage(c.Request().Context(), img)
	}
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderImageForm(c, http.StatusUnprocessableEntity, views.ImageFormProps{
			Kind: kind, Values: v, Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	s.addFlash(c, "Image "+img.DisplayName+" added as "+img.Name+".")
	return seeOther(c, sc.ImagePath(img.Name))
}
