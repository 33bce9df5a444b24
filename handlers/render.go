package handlers

import (
	"bytes"
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"imagehub/views"
)

// render writes a component with a status. It renders into a buffer first,
// so that a failing template gives a clean error instead of half a page.
// Pages hold a user's data and CSRF token: no cache keeps them, and the
// back button after signing out reloads them (and is sent to /login).
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	c.Response().Header().Set("Vary", "HX-Request")
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// page returns the layout's props for the current request: title, active
// navigation item, user, CSRF token and pending notices.
func (s *Server) page(c echo.Context, title, nav string) views.Page {
	return views.Page{
		Title:         title,
		Nav:           nav,
		User:          currentUser(c),
		CSRF:          s.csrfToken(c),
		Flashes:       s.flashes(c),
		StaticVersion: s.staticVersion,
	}
}

// seeOther redirects after a successful form post (POST/redirect/GET). An
// htmx request is told to load the page whole instead.
func seeOther(c echo.Context, target string) error {
	if isHTMX(c) {
		c.Response().Header().Set("HX-Redirect", target)
		return c.NoContent(http.StatusOK)
	}
	return c.Redirect(http.StatusSeeOther, target)
}

// deleted answers a delete that succeeded, in the form its caller asked
// for. A form posted to …/delete (a page's own button, or a browser without
// script) gets the notice and is sent back to the list at back. A DELETE
// gets no content: 204 for the API and other clients, and for htmx an empty
// 200 that replaces the table row with nothing. Each resource has one delete
// handler for its page, its form and its API route, ending here.
func (s *Server) deleted(c echo.Context, notice, back string) error {
	switch {
	case c.Request().Method != http.MethodDelete:
		s.addFlash(c, notice)
		return seeOther(c, back)
	case isHTMX(c) && !isAPI(c):
		return c.HTML(http.StatusOK, "")
	}
	return c.NoContent(http.StatusNoContent)
}
