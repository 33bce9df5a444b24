package handlers

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// imageGroupsForm is "Edit Groups": Global, or the groups that may use it.
func (s *Server) imageGroupsForm(c echo.Context) error {
	img, err := s.systemImage(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return s.renderImageGroups(c, http.StatusOK, views.ImageGroupsProps{Image: img, Global: img.Global, Selected: img.Groups})
}

// setImageGroups saves "Edit Groups".
func (s *Server) setImageGroups(c echo.Context) error {
	ctx := c.Request().Context()
	form, err := c.FormParams()
	if err != nil {
		return badRequest("The form could not be read.")
	}
	old, err := s.systemImage(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	img := *old
	img.Global, img.Groups = form.Get("global") != "", nil
	if !img.Global {
		// As in the image form, the groups count only when not global.
		img.Groups = form["groups"]
	}
	err = s.checkImageChange(c, &imageChange{before: old, after: &img})
	if err == nil {
		err = s.store.UpdateImage(ctx, &img)
	}
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderImageGroups(c, http.StatusUnprocessableEntity, views.ImageGroupsProps{
			Image: old, Global: form.Get("global") != "", Selected: form["groups"], Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	saved, err := s.store.FindImage(ctx, img.Name)
	if err != nil {
		return err
	}
	s.addFlash(c, "Access to "+saved.DisplayName+" saved: "+views.AccessText(saved)+".")
	return seeOther(c, views.Scope{}.ImagePath(saved.Name))
}

func (s *Server) renderImageGroups(c echo.Context, status int, p views.ImageGroupsProps) error {
	groups, err := s.store.ListGroups(c.Request().Context())
	if err != nil {
		return err
	}
	p.Groups = groups
	p.Page = s.page(c, "Edit Groups of "+p.Image.DisplayName, views.NavImages)
	return render(c, status, views.ImageGroups(p))
}

// systemImage returns a System image for "Edit Groups": a group's own image
// has no groups to edit (it is its group's alone), which is said plainly
// rather than ignored.
func (s *Server) systemImage(ctx context.Context, name string) (*store.Image, error) {
	img, err := s.store.FindImage(ctx, name)
	if err != nil {
		return nil, err
	}
	if img.Owner != store.OwnerSystem {
		return nil, store.Errorf(store.ECONFLICT, "%s is the own image of the group %s: only that group may use it, so it has no groups to edit.", name, img.Owner)
	}
	return img, nil
}
