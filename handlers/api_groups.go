package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// apiListGroups lists the groups with their members.
func (s *Server) apiListGroups(c echo.Context) error {
	groups, err := s.store.ListGroups(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(groups, len(groups)))
}

// apiCreateGroup adds a group and answers 201 with it.
func (s *Server) apiCreateGroup(c echo.Context) error {
	var g store.Group
	_, err := decodeObject(c, map[string]any{
		"name":        &g.Name,
		"displayName": &g.DisplayName,
	}, "members", "createdAt")
	if err != nil {
		return err
	}
	if err := s.store.CreateGroup(c.Request().Context(), &g); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, g)
}

// apiSetMember adds the user to the group or changes their role:
// {"role": "member" | "admin"}. It answers the group with its members.
func (s *Server) apiSetMember(c echo.Context) error {
	var role store.Role
	if _, err := decodeObject(c, map[string]any{"role": &role}, "username"); err != nil {
		return err
	}
	group := c.Param("group")
	err := s.setMember(c, group, c.Param("username"), role)
	if err != nil {
		if r := store.ErrorFields(err)["username"]; r != "" {
			// The user is named by the path here: not a field, a 404.
			return store.Errorf(store.ENOTFOUND, "%s", r)
		}
		return err
	}
	g, err := s.store.FindGroup(c.Request().Context(), group)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, g)
}
