package handlers

import (
	"net/http"
	"strconv"
	"time"

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
// The form's "expires" is a number of days, or "" for never.
func (s *Server) createTokenForm(c echo.Context) error {
	v := views.TokenValues{Name: c.FormValue("name"), Scope: c.FormValue("scope"), Expires: c.FormValue("expires")}
	value, tok, err := s.createTokenFromForm(c, v)
	if store.ErrorCode(err) == store.EINVALID {
		errs := store.ErrorFields(err)
		if r, ok := errs["expiresAt"]; ok {
			errs["expires"] = r
		}
		return s.renderTokens(c, http.StatusUnprocessableEntity, views.TokensProps{Form: v, Errors: errs})
	} else if err != nil {
		return err
	}
	return s.renderTokens(c, http.StatusCreated, views.TokensProps{Created: tok, Value: value})
}

// createTokenFromForm makes the token the form asks for.
func (s *Server) createTokenFromForm(c echo.Context, v views.TokenValues) (string, *store.Token, error) {
	expiresAt, err := s.tokenExpiry(v.Expires)
	if err != nil {
		return "", nil, err
	}
	return s.store.CreateTokenExpiring(c.Request().Context(), currentUser(c).Username, v.Name, store.TokenScope(v.Scope), expiresAt)
}

// tokenExpiry turns the form's "expires" (days; "" for never) into a time.
func (s *Server) tokenExpiry(days string) (*time.Time, error) {
	if days == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(days)
	if err != nil || n < 1 || n > views.MaxTokenDays {
		return nil, store.Invalid(map[string]string{"expires": "Choose never or a number of days from 1 to " + strconv.Itoa(views.MaxTokenDays) + "."})
	}
	t := s.now().AddDate(0, 0, n)
	return &t, nil
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
	p.Tokens, p.All, p.Now = tokens, u.Admin, s.now()
	p.Page = s.page(c, "API tokens", views.NavTokens)
	return render(c, status, views.Tokens(p))
}
