package handlers

import (
	"crypto/subtle"

	"github.com/labstack/echo/v4"
)

// checkCSRF refuses state-changing requests that carry a session cookie but
// not the session's CSRF token (the "_csrf" form field or the X-CSRF-Token
// header; the JSON API accepts only the header). Requests authenticated with
// an API token need none: browsers never add that header on their own.
func (s *Server) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isSafeMethod(c.Request().Method) {
			return next(c)
		}
		if id := currentIdentity(c); id != nil && id.Bearer {
			return next(c)
		}
		want, _ := s.session(c).Values[sessCSRF].(string)
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" && !isAPI(c) {
			got = c.FormValue("_csrf")
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return forbidden("The form has expired or did not come from imagehub (missing or wrong CSRF token). Reload the page and try again.")
		}
		return next(c)
	}
}

// csrfToken returns the session's CSRF token, making and saving one when the
// session has none yet. Forms carry it in the "_csrf" field and htmx in the
// X-CSRF-Token header.
func (s *Server) csrfToken(c echo.Context) string {
	if currentIdentity(c) != nil && currentIdentity(c).Bearer {
		return ""
	}
	sess := s.session(c)
	if tok, ok := sess.Values[sessCSRF].(string); ok && tok != "" {
		return tok
	}
	tok := randomToken()
	sess.Values[sessCSRF] = tok
	s.keepSession(c)
	return tok
}
