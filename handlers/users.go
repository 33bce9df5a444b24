package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// Why an administrator is refused changes to their own account: there must
// always be someone left who can manage imagehub, and the one signed in is
// the one sure to be.
const (
	reasonDeleteSelf  = "You cannot delete your own account: ask another administrator."
	reasonUnadminSelf = "You cannot remove your own administrator rights: ask another administrator."
)

// usersPage lists the users with the add form.
func (s *Server) usersPage(c echo.Context) error {
	return s.renderUsers(c, http.StatusOK, views.UsersProps{})
}

// createUser adds a user from the form; bad fields bring the form back (422)
// with the values kept, except the password.
func (s *Server) createUser(c echo.Context) error {
	u := &store.User{Username: c.FormValue("username"), Password: c.FormValue("password"), Admin: c.FormValue("admin") == "true"}
	err := s.store.CreateUser(c.Request().Context(), u)
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderUsers(c, http.StatusUnprocessableEntity, views.UsersProps{
			Form: views.UserValues{Username: u.Username, Admin: u.Admin}, Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	s.addFlash(c, "User "+u.Username+" added.")
	return seeOther(c, "/admin/users")
}

// userPage shows one user: reset password, administrator rights, groups.
func (s *Server) userPage(c echo.Context) error {
	return s.renderUser(c, http.StatusOK, c.Param("username"), nil)
}

// resetPassword sets a user's password, which ends every session of theirs
// (but the administrator's own current one, when they reset their own) and
// revokes their API tokens.
func (s *Server) resetPassword(c echo.Context) error {
	username := c.Param("username")
	err := s.setPassword(c, username, c.FormValue("password"))
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderUser(c, http.StatusUnprocessableEntity, username, store.ErrorFields(err))
	} else if err != nil {
		return err
	}
	s.addFlash(c, "Password of "+username+" changed; their other sessions have ended and their API tokens are revoked.")
	return seeOther(c, views.UserPath(username))
}

// setUserAdmin makes or unmakes an administrator (the form's "admin" field
// is "true" or "false").
func (s *Server) setUserAdmin(c echo.Context) error {
	username := c.Param("username")
	admin := c.FormValue("admin") == "true"
	err := s.setAdmin(c, username, admin)
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderUser(c, http.StatusUnprocessableEntity, username, store.ErrorFields(err))
	} else if err != nil {
		return err
	}
	msg := username + " is now an administrator."
	if !admin {
		msg = username + " is no longer an administrator."
	}
	s.addFlash(c, msg)
	return seeOther(c, views.UserPath(username))
}

// deleteUser deletes a user (see deleted): from the list, the user page and
// the API. The caller may not delete themselves (409).
func (s *Server) deleteUser(c echo.Context) error {
	username := c.Param("username")
	if currentUser(c).Username == username {
		return store.Errorf(store.ECONFLICT, "%s", reasonDeleteSelf)
	}
	if err := s.store.DeleteUser(c.Request().Context(), username); err != nil {
		return err
	}
	return s.deleted(c, "User "+username+" deleted.", "/admin/users")
}

// setPassword changes a user's password for the pages and the API.
func (s *Server) setPassword(c echo.Context, username, password string) error {
	if err := s.store.SetPassword(c.Request().Context(), username, password); err != nil {
		return err
	}
	return s.renewSessionEpoch(c, username)
}

// setAdmin changes a user's administrator flag, refusing to take it from
// the caller themselves.
func (s *Server) setAdmin(c echo.Context, username string, admin bool) error {
	if !admin && currentUser(c).Username == username {
		return store.Invalid(map[string]string{"admin": reasonUnadminSelf})
	}
	return s.store.SetAdmin(c.Request().Context(), username, admin)
}

func (s *Server) renderUsers(c echo.Context, status int, p views.UsersProps) error {
	users, err := s.store.ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	p.Users = users
	p.Page = s.page(c, "Users", views.NavUsers)
	return render(c, status, views.Users(p))
}

func (s *Server) renderUser(c echo.Context, status int, username string, errs map[string]string) error {
	u, err := s.store.FindUser(c.Request().Context(), username)
	if err != nil {
		return err
	}
	return render(c, status, views.UserPage(views.UserPageProps{
		Page:   s.page(c, "User "+u.Username, views.NavUsers),
		User:   u,
		Self:   currentUser(c).Username == u.Username,
		Errors: errs,
	}))
}
