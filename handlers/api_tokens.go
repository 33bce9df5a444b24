package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// newTokenBody is the answer to a new token: the token's description and,
// once, its value.
type newTokenBody struct {
	*store.Token
	Value string `json:"token"`
}

// apiListTokens lists the caller's tokens; an administrator gets every
// user's, or one user's with ?user=NAME.
func (s *Server) apiListTokens(c echo.Context) error {
	owner := tokenOwnerFilter(currentUser(c))
	if owner == "" {
		owner = c.QueryParam("user")
	}
	tokens, err := s.store.ListTokens(c.Request().Context(), owner)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(tokens, len(tokens)))
}

// apiCreateToken makes a token for the caller, {"name", "scope": "read" |
// "admin", "expiresAt": an RFC 3339 time or null (never, the default)}, and
// answers 201 with its value in "token", the only time it is ever shown.
func (s *Server) apiCreateToken(c echo.Context) error {
	var (
		name      string
		scope     store.TokenScope
		expiresAt *time.Time
	)
	if _, err := decodeObject(c, map[string]any{"name": &name, "scope": &scope, "expiresAt": &expiresAt}); err != nil {
		return err
	}
	value, tok, err := s.store.CreateTokenExpiring(c.Request().Context(), currentUser(c).Username, name, scope, expiresAt)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, newTokenBody{Token: tok, Value: value})
}
