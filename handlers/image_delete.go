package handlers

import "github.com/labstack/echo/v4"

// deleteImage deletes an image of the request's scope (see deleted): from
// the table, the image page and the API. Its builds go with it, and so do
// their logs, its tags in the embedded registry and its images in the layer
// cache (removeLeftovers).
func (s *Server) deleteImage(c echo.Context) error {
	ctx, sc, name := c.Request().Context(), scopeOf(c), c.Param("name")
	if _, err := s.scopedImage(ctx, sc, name); err != nil {
		return err
	}
	left, err := s.leftoversOf(ctx, name)
	if err != nil {
		return err
	}
	if err := s.store.DeleteImage(ctx, name); err != nil {
		return err
	}
	s.removeLeftovers(ctx, left)
	return s.deleted(c, "Image "+name+" deleted.", sc.ImagesPath())
}
