package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// groupsPage lists the groups with the add form.
func (s *Server) groupsPage(c echo.Context) error {
	return s.renderGroups(c, http.StatusOK, views.GroupsProps{})
}

// createGroup adds a group from the form.
func (s *Server) createGroup(c echo.Context) error {
	g := &store.Group{Name: c.FormValue("name"), DisplayName: c.FormValue("displayName")}
	err := s.store.CreateGroup(c.Request().Context(), g)
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderGroups(c, http.StatusUnprocessableEntity, views.GroupsProps{
			Form: views.GroupValues{Name: g.Name, DisplayName: g.DisplayName}, Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	s.addFlash(c, "Group "+g.Name+" added.")
	return seeOther(c, "/admin/groups")
}

// editGroupForm shows a group's page: the rename form and its members.
func (s *Server) editGroupForm(c echo.Context) error {
	g, err := s.store.FindGroup(c.Request().Context(), c.Param("group"))
	if err != nil {
		return err
	}
	return s.renderGroupEdit(c, http.StatusOK, views.GroupEditProps{
		Name: g.Name, Form: views.GroupValues{Name: g.Name, DisplayName: g.DisplayName},
	})
}

// renameGroup saves the rename form; grants and members follow the group.
func (s *Server) renameGroup(c echo.Context) error {
	name := c.Param("group")
	g := &store.Group{Name: c.FormValue("name"), DisplayName: c.FormValue("displayName")}
	err := s.store.RenameGroup(c.Request().Context(), name, g)
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderGroupEdit(c, http.StatusUnprocessableEntity, views.GroupEditProps{
			Name: name, Form: views.GroupValues{Name: g.Name, DisplayName: g.DisplayName}, Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	s.addFlash(c, "Group "+name+" saved as "+g.Name+".")
	return seeOther(c, "/admin/groups")
}

// deleteGroup deletes a group with its memberships, grants and own images
// (see deleted), and what those images leave behind (removeLeftovers).
func (s *Server) deleteGroup(c echo.Context) error {
	ctx, name := c.Request().Context(), c.Param("group")
	left, err := s.groupLeftovers(ctx, name)
	if err != nil {
		return err
	}
	if err := s.store.DeleteGroup(ctx, name); err != nil {
		return err
	}
	s.removeLeftovers(ctx, left)
	return s.deleted(c, "Group "+name+" deleted.", "/admin/groups")
}

func (s *Server) renderGroups(c echo.Context, status int, p views.GroupsProps) error {
	groups, err := s.store.ListGroups(c.Request().Context())
	if err != nil {
		return err
	}
	p.Groups = groups
	p.Page = s.page(c, "Groups", views.NavGroups)
	return render(c, status, views.Groups(p))
}

// renderGroupEdit renders a group's page; the members and the users to
// choose from are loaded here, the forms' values come in p.
func (s *Server) renderGroupEdit(c echo.Context, status int, p views.GroupEditProps) error {
	ctx := c.Request().Context()
	g, err := s.store.FindGroup(ctx, p.Name)
	if err != nil {
		return err
	}
	if p.Form == (views.GroupValues{}) && p.Errors == nil {
		p.Form = views.GroupValues{Name: g.Name, DisplayName: g.DisplayName}
	}
	if p.Users, err = s.store.ListUsers(ctx); err != nil {
		return err
	}
	p.Members = g.Members
	p.Page = s.page(c, "Group "+p.Name, views.NavGroups)
	return render(c, status, views.GroupEdit(p))
}
