package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

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
// the user's session epoch (so a later password change ends it) and when it
// began (so it ends after sessionMaxAge whatever the cookie says). Attempts
// are counted per username and client address, and per client address,
// before the password is checked (limiter.go); past the limit the password is
// not even checked and the form says how long to wait. The client address is
// the one Config.TrustedProxies lets count (clientAddress).
func (s *Server) login(c echo.Context) error {
	username, password := c.FormValue("username"), c.FormValue("password")
	next := safeNext(c.FormValue("next"))
	now, addr := s.now(), c.RealIP()
	attempt, wait := s.logins.begin(now, username, addr)
	if attempt == nil {
		return s.tooManySignIns(c, wait, views.LoginProps{Username: username, Next: next})
	}
	u, err := s.checkPassword(c.Request().Context(), username, password)
	if store.ErrorCode(err) == store.EUNAUTHORIZED {
		return s.renderLogin(c, http.StatusUnauthorized, views.LoginProps{Username: username, Next: next, Error: store.ErrorMessage(err)})
	} else if err != nil {
		attempt.abandoned()
		return err
	}
	attempt.succeeded()
	sess := s.session(c)
	clearSession(sess)
	sess.Values[sessUser] = u.Username
	sess.Values[sessEpoch] = u.SessionEpoch
	sess.Values[sessIssued] = now.Unix()
	// A new CSRF token with every sign-in: a token seen before it is useless.
	sess.Values[sessCSRF] = randomToken()
	if err := s.saveSession(c); err != nil {
		return err
	}
	c.Set(ctxIdentity, &identity{User: u})
	return s.afterLogin(c, next)
}

// tooManySignIns refuses a sign-in attempt past the limit: 429 with a
// Retry-After header, and the form with the message for a browser.
func (s *Server) tooManySignIns(c echo.Context, wait time.Duration, p views.LoginProps) error {
	msg := tooManyMessage(wait)
	c.Response().Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	if wantsJSON(c) {
		return echo.NewHTTPError(http.StatusTooManyRequests, msg)
	}
	p.Error = msg
	return s.renderLogin(c, http.StatusTooManyRequests, p)
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

// safeNext returns where to go after signing in: a local path only, so that
// the sign-in form cannot be used to send people to another site. Browsers
// drop tabs and line breaks from a URL and read a backslash as a slash, so
// "/\t/evil.example" (next=/%09/evil.example) or "/\\evil.example" would
// become "//evil.example", another site: a path with a control character, a
// space or a backslash anywhere is refused, as is anything with a scheme or
// a host.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return ""
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' || unicode.IsSpace(r) {
			return ""
		}
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}
