package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// setMemberForm adds a user to a group, or changes their role, from the
// group's page. A bad or unknown user or role brings the page back (422)
// with the reason at its field.
func (s *Server) setMemberForm(c echo.Context) error {
	group := c.Param("group")
	v := views.MemberValues{Username: c.FormValue("username"), Role: c.FormValue("role")}
	err := s.setMember(c, group, v.Username, store.Role(v.Role))
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderGroupEdit(c, http.StatusUnprocessableEntity, views.GroupEditProps{
			Name: group, Member: v, MemberErrors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	s.addFlash(c, v.Username+" is now "+roleText(store.Role(v.Role))+" of "+group+".")
	return seeOther(c, views.GroupPath(group, "/edit"))
}

// removeMember takes a user out of a group (see deleted): from the
// members table and the API.
func (s *Server) removeMember(c echo.Context) error {
	group, username := c.Param("group"), c.Param("username")
	if err := s.store.RemoveMember(c.Request().Context(), group, username); err != nil {
		return err
	}
	return s.deleted(c, username+" removed from "+group+".", views.GroupPath(group, "/edit"))
}

// setMember checks the form's or body's values and saves the membership. An
// unknown user is a reason at the username field, an unknown group a 404.
func (s *Server) setMember(c echo.Context, group, username string, role store.Role) error {
	f := map[string]string{}
	if username == "" {
		f["username"] = "Choose a user."
	}
	if role != store.RoleMember && role != store.RoleAdmin {
		f["role"] = `Choose "member" or "admin" (group admin).`
	}
	if len(f) > 0 {
		return store.Invalid(f)
	}
	ctx := c.Request().Context()
	if _, err := s.store.FindGroup(ctx, group); err != nil {
		return err
	}
	err := s.store.SetMember(ctx, group, username, role)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return store.Invalid(map[string]string{"username": store.ErrorMessage(err)})
	}
	return err
}

// roleText names a role inside a sentence.
func roleText(r store.Role) string {
	if r == store.RoleAdmin {
		return "a group admin"
	}
	return "a member"
}
