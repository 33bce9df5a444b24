package handlers

import (
	"context"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// scopeOf is whose images a request manages: the group of the route's
// :group parameter (/groups/{group}/…, which only its group admins and
// administrators reach), or the administrators' catalogue.
func scopeOf(c echo.Context) views.Scope { return views.Scope{Group: c.Param("group")} }

// imageOwner is the owner a new image of the scope gets.
func imageOwner(sc views.Scope) string {
	if sc.IsGroup() {
		return sc.Group
	}
	return store.OwnerSystem
}

// scopedImage returns the image named name when the scope holds it: any
// image for administrators, only the group's own images in a group's scope
// (any other image is "not found" there).
func (s *Server) scopedImage(ctx context.Context, sc views.Scope, name string) (*store.Image, error) {
	img, err := s.store.FindImage(ctx, name)
	if err != nil {
		return nil, err
	}
	if sc.IsGroup() && img.Owner != sc.Group {
		return nil, store.Errorf(store.ENOTFOUND, "Image %q is not an image of the group %q.", name, sc.Group)
	}
	return img, nil
}
