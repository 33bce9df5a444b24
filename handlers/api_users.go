package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// apiListUsers lists the users with their groups (never a password).
func (s *Server) apiListUsers(c echo.Context) error {
	users, err := s.store.ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(users, len(users)))
}

// apiCreateUser adds a user, {"username", "password", "admin"}, and answers
// 201 with it, without the password (write-only).
func (s *Server) apiCreateUser(c echo.Context) error {
	var u store.User
	_, err := decodeObject(c, map[string]any{
		"username": &u.Username,
		"password": &u.Password,
		"admin":    &u.Admin,
	}, "groups", "createdAt")
	if err != nil {
		return err
	}
	if err := s.store.CreateUser(c.Request().Context(), &u); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, u)
}

// apiGetUser answers one user.
func (s *Server) apiGetUser(c echo.Context) error {
	u, err := s.store.FindUser(c.Request().Context(), c.Param("username"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

// apiPatchUser sets a user's password and/or administrator flag:
// {"password": "…", "admin": true}. A new password ends the user's sessions
// and revokes their API tokens.
// Taking one's own administrator rights is refused (422 at "admin") before
// anything changes.
func (s *Server) apiPatchUser(c echo.Context) error {
	username := c.Param("username")
	var (
		password string
		admin    bool
	)
	present, err := decodeObject(c, map[string]any{"password": &password, "admin": &admin}, "username", "groups", "createdAt")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.store.FindUser(ctx, username); err != nil {
		return err
	}
	if present["admin"] && !admin && currentUser(c).Username == username {
		return store.Invalid(map[string]string{"admin": reasonUnadminSelf})
	}
	if present["password"] {
		if err := s.setPassword(c, username, password); err != nil {
			return err
		}
	}
	if present["admin"] {
		if err := s.setAdmin(c, username, admin); err != nil {
			return err
		}
	}
	u, err := s.store.FindUser(ctx, username)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}
