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

// revokeToken answers htmx's DELETE from the list.
func (s *Server) revokeToken(c echo.Context) error {
	if err := s.revoke(c); err != nil {
		return err
	}
	if isHTMX(c) {
		return c.HTML(http.StatusOK, "")
	}
	return c.NoContent(http.StatusNoContent)
}

// revokeTokenForm is the revoke of browsers without script.
func (s *Server) revokeTokenForm(c echo.Context) error {
	if err := s.revoke(c); err != nil {
		return err
	}
	if err := s.addFlash(c, "Token revoked."); err != nil {
		return err
	}
	return seeOther(c, "/account/tokens")
}

// revoke deletes the token of the :id parameter: any token for an
// administrator, else only one of the caller's own (another user's token is
// "not found", so that token ids cannot be probed).
func (s *Server) revoke(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return store.Errorf(store.ENOTFOUND, "Token %q not found.", c.Param("id"))
	}
	return s.store.RevokeToken(c.Request().Context(), id, tokenOwnerFilter(currentUser(c)))
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
