package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// loginForm shows the sign-in form; a signed-in user goes straight on.
func (s *Server) loginForm(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	if currentUser(c) != nil {
		return s.afterLogin(c, next)
	}
	return s.renderLogin(c, http.StatusOK, views.LoginProps{Next: next})
}

// login checks the username and password and starts a session that remembers
// the user's session epoch, so a later password change ends it.
func (s *Server) login(c echo.Context) error {
	username, password := c.FormValue("username"), c.FormValue("password")
	next := safeNext(c.FormValue("next"))
	u, err := s.store.Authenticate(c.Request().Context(), username, password)
	if store.ErrorCode(err) == store.EUNAUTHORIZED {
		return s.renderLogin(c, http.StatusUnauthorized, views.LoginProps{Username: username, Next: next, Error: store.ErrorMessage(err)})
	} else if err != nil {
		return err
	}
	sess := s.session(c)
	clearSession(sess)
	sess.Values[sessUser] = u.Username
	sess.Values[sessEpoch] = u.SessionEpoch
	// A new CSRF token with every sign-in: a token seen before it is useless.
	sess.Values[sessCSRF] = randomToken()
	if err := s.saveSession(c); err != nil {
		return err
	}
	c.Set(ctxIdentity, &identity{User: u})
	return s.afterLogin(c, next)
}

func (s *Server) afterLogin(c echo.Context, next string) error {
	if next != "" {
		return c.Redirect(http.StatusSeeOther, next)
	}
	return s.home(c)
}

func (s *Server) renderLogin(c echo.Context, status int, p views.LoginProps) error {
	p.Page = s.page(c, "Sign in", "")
	return render(c, status, views.Login(p))
}

// logout ends the session by deleting its cookie.
func (s *Server) logout(c echo.Context) error {
	sess := s.session(c)
	clearSession(sess)
	sess.Options.MaxAge = -1
	if err := s.saveSession(c); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}
