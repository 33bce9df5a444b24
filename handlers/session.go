package handlers

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// sessionName is the cookie's name; secureSessionName when cookies are
// Secure. The __Host- prefix makes browsers accept the cookie only when it is
// Secure, has Path=/ and no Domain, so that neither a plain-HTTP page nor a
// sibling subdomain can plant or overwrite it.
const (
	sessionName       = "imagehub_session"
	secureSessionName = "__Host-" + sessionName
)

// Keys of the session values and of the echo context.
const (
	sessUser  = "user"
	sessEpoch = "epoch"
	sessCSRF  = "csrf"
	// sessIssued is when the user signed in (Unix seconds): a session ends
	// sessionMaxAge after it, however often its cookie is renewed.
	sessIssued = "issued"

	ctxIdentity = "imagehub.identity"
	ctxSession  = "imagehub.session"
)

// identity is who made a request: a user signed in with the session cookie,
// or a user whose API token came in the Authorization header.
type identity struct {
	User *store.User
	// Bearer is set when the request carried an API token; such requests
	// need no CSRF token, since browsers never add the header by themselves.
	Bearer bool
	// Scope is the token's scope ("" for a session).
	Scope store.TokenScope
}

// currentIdentity returns the request's identity, or nil when anonymous.
func currentIdentity(c echo.Context) *identity {
	id, _ := c.Get(ctxIdentity).(*identity)
	return id
}

// currentUser returns the signed-in user, or nil when anonymous.
func currentUser(c echo.Context) *store.User {
	if id := currentIdentity(c); id != nil {
		return id.User
	}
	return nil
}

// session returns the request's cookie session (a new, empty one when the
// request has none or it does not decode: decodeSession).
func (s *Server) session(c echo.Context) *sessions.Session {
	if sess, ok := c.Get(ctxSession).(*sessions.Session); ok {
		return sess
	}
	sess := s.decodeSession(c.Request())
	c.Set(ctxSession, sess)
	return sess
}

// saveSession writes the session cookie; call it before the body is written.
func (s *Server) saveSession(c echo.Context) error {
	return s.session(c).Save(c.Request(), c.Response())
}

// keepSession writes the session cookie where a failure must not change the
// answer: after a change was made, or for what a page only shows. The
// failure is logged.
func (s *Server) keepSession(c echo.Context) {
	if err := s.saveSession(c); err != nil {
		s.log.Error("saving the session", "err", err)
	}
}

// authenticate finds out who is calling and stores it in the context. An
// Authorization header must hold a valid token; a session is valid only while
// its user exists, has not changed password since (the epoch) and it is
// younger than sessionMaxAge (the time of sign-in is kept in the session: the
// cookie's own MaxAge is renewed each time the cookie is written). This runs
// on every request but for static files and the health check, which need
// nobody and so cost no database query.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p := c.Request().URL.Path; p == "/healthz" || strings.HasPrefix(p, "/static/") {
			return next(c)
		}
		if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
			return s.authenticateToken(c, h, next)
		}
		sess := s.session(c)
		name, ok := sess.Values[sessUser].(string)
		if !ok {
			return next(c)
		}
		if !s.sessionFresh(sess) {
			return s.endSession(c, next)
		}
		u, err := s.store.FindUser(c.Request().Context(), name)
		epoch, _ := sess.Values[sessEpoch].(int64)
		switch {
		case err == nil && u.SessionEpoch == epoch:
			c.Set(ctxIdentity, &identity{User: u})
		case err == nil || store.ErrorCode(err) == store.ENOTFOUND:
			// Password changed or user deleted: this session is over.
			return s.endSession(c, next)
		default:
			return err
		}
		return next(c)
	}
}

// sessionFresh reports whether the session began less than sessionMaxAge
// ago (and not in the future, which only a forged or foreign cookie can say).
func (s *Server) sessionFresh(sess *sessions.Session) bool {
	issued, _ := sess.Values[sessIssued].(int64)
	age := s.now().Sub(time.Unix(issued, 0))
	return issued > 0 && age >= -time.Minute && age < sessionMaxAge*time.Second
}

// endSession forgets the session's user and goes on as anonymous.
func (s *Server) endSession(c echo.Context, next echo.HandlerFunc) error {
	clearSession(s.session(c))
	if err := s.saveSession(c); err != nil {
		return err
	}
	return next(c)
}

// renewSessionEpoch keeps the caller's own session alive after they changed
// their own password (which ends every other session of theirs).
func (s *Server) renewSessionEpoch(c echo.Context, username string) error {
	id := currentIdentity(c)
	if id == nil || id.Bearer || id.User.Username != username {
		return nil
	}
	u, err := s.store.FindUser(c.Request().Context(), username)
	if err != nil {
		return err
	}
	s.session(c).Values[sessEpoch] = u.SessionEpoch
	s.keepSession(c)
	return nil
}

func (s *Server) authenticateToken(c echo.Context, header string, next echo.HandlerFunc) error {
	scheme, token, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return store.Errorf(store.EUNAUTHORIZED, "Use the header Authorization: Bearer TOKEN.")
	}
	u, scope, err := s.store.AuthenticateToken(c.Request().Context(), strings.TrimSpace(token))
	if err != nil {
		return err
	}
	c.Set(ctxIdentity, &identity{User: u, Bearer: true, Scope: scope})
	return next(c)
}

// clearSession forgets the user and the CSRF token.
func clearSession(sess *sessions.Session) {
	for k := range sess.Values {
		delete(sess.Values, k)
	}
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// The notices waiting in the session for the next page are bounded: a
// client that posts form after form without following the redirects would
// otherwise grow the cookie past the 4 KB a browser keeps (and its encoder
// accepts). The newest ones are kept.
const (
	// maxFlashes is how many notices wait at most: enough for the notices
	// of one request (a saved image and the secrets it dropped).
	maxFlashes = 4
	// flashBudget bounds the bytes of the waiting notices; a longer notice is
	// cut to it.
	flashBudget = 1024
)

// addFlash keeps one-time notices for the next page (after a redirect),
// within maxFlashes and flashBudget. The change they tell of is made: a
// session that cannot be saved loses them and is logged, never answered.
func (s *Server) addFlash(c echo.Context, notices ...string) {
	if len(notices) == 0 {
		return
	}
	sess := s.session(c)
	waiting := takeFlashes(sess)
	for _, n := range boundFlashes(append(waiting, notices...)) {
		sess.AddFlash(n)
	}
	s.keepSession(c)
}

// flashes takes the pending notices out of the session.
func (s *Server) flashes(c echo.Context) []string {
	out := takeFlashes(s.session(c))
	if len(out) > 0 {
		s.keepSession(c)
	}
	return out
}

// takeFlashes removes the session's notices and returns them.
func takeFlashes(sess *sessions.Session) []string {
	var out []string
	for _, f := range sess.Flashes() {
		if m, ok := f.(string); ok {
			out = append(out, m)
		}
	}
	return out
}

// boundFlashes returns the newest notices that fit maxFlashes and
// flashBudget, each cut to flashBudget first.
func boundFlashes(notices []string) []string {
	first, size := len(notices), 0
	for i := len(notices) - 1; i >= 0 && len(notices)-i <= maxFlashes; i-- {
		notices[i] = cutText(notices[i], flashBudget)
		if size += len(notices[i]); size > flashBudget {
			break
		}
		first = i
	}
	return notices[first:]
}

// cutText shortens s to at most max bytes, on a character boundary, ending
// with "…" when it was cut.
func cutText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
