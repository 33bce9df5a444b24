package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// home sends people where they work: administrators to the images table,
// users to their image selection, anonymous visitors to the sign-in form.
func (s *Server) home(c echo.Context) error {
	switch u := currentUser(c); {
	case u == nil:
		return c.Redirect(http.StatusSeeOther, "/login")
	case u.Admin:
		return c.Redirect(http.StatusSeeOther, "/admin/images")
	default:
		return c.Redirect(http.StatusSeeOther, "/images")
	}
}

// adminHome is the start of the admin pages.
func (s *Server) adminHome(c echo.Context) error {
	return c.Redirect(http.StatusSeeOther, "/admin/images")
}
