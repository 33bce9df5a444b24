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
