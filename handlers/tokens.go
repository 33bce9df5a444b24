package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// tokensPage lists the caller's API tokens (every user's for an
// administrator) with the form to create one.
func (s *Server) tokensPage(c echo.Context) error {
	return s.renderTokens(c, http.StatusOK, views.TokensProps{})
}

// createTokenForm makes a token for the caller and shows its value on the
// answer itself, once: it is never stored, so no redirect could show it again.
func (s *Server) createTokenForm(c echo.Context) error {
	v := views.TokenValues{Name: c.FormValue("name"), Scope: c.FormValue("scope")}
	value, tok, err := s.store.CreateToken(c.Request().Context(), currentUser(c).Username, v.Name, store.TokenScope(v.Scope))
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderTokens(c, http.StatusUnprocessableEntity, views.TokensProps{Form: v, Errors: store.ErrorFields(err)})
	} else if err != nil {
		return err
	}
	return s.renderTokens(c, http.StatusCreated, views.TokensProps{Created: tok, Value: value})
}

// revokeToken deletes the token of the :id parameter (see deleted): from
// the list and the API. An administrator may revoke any token, anyone else
// only their own (another user's token is "not found", so that token ids
// cannot be probed).
func (s *Server) revokeToken(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return store.Errorf(store.ENOTFOUND, "Token %q not found.", c.Param("id"))
	}
	if err := s.store.RevokeToken(c.Request().Context(), id, tokenOwnerFilter(currentUser(c))); err != nil {
		return err
	}
	return s.deleted(c, "Token revoked.", "/account/tokens")
}

// tokenOwnerFilter is whose tokens the caller may list and revoke: "" (all)
// for an administrator, else their own.
func tokenOwnerFilter(u *store.User) string {
	if u.Admin {
		return ""
	}
	return u.Username
}

func (s *Server) renderTokens(c echo.Context, status int, p views.TokensProps) error {
	u := currentUser(c)
	tokens, err := s.store.ListTokens(c.Request().Context(), tokenOwnerFilter(u))
	if err != nil {
		return err
	}
	p.Tokens, p.All = tokens, u.Admin
	p.Page = s.page(c, "API tokens", views.NavTokens)
	return render(c, status, views.Tokens(p))
}
