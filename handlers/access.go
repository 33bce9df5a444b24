package handlers

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// requireAccess returns the middleware that guards routes of access level a.
func (s *Server) requireAccess(a Access) echo.MiddlewareFunc {
	switch a {
	case AccessPublic:
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	case AccessUser:
		return s.requireUser
	case AccessAdmin:
		return s.requireAdmin
	case AccessGroupAdmin:
		return s.requireGroupAdmin
	case AccessGroupMember:
		return s.requireGroupMember
	case AccessImageAdmin:
		return s.requireImageAdmin
	}
	panic("handlers: unknown access level " + string(a))
}

// requireUser lets signed-in users through. Anonymous page requests are sent
// to the sign-in form (and back afterwards); API requests get 401. A
// read-only token may only read.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := currentIdentity(c)
		if id == nil {
			return s.signInFirst(c)
		}
		if id.Bearer && id.Scope == store.ScopeRead && !isSafeMethod(c.Request().Method) {
			return forbidden("This API token is read-only.")
		}
		return next(c)
	}
}

// requireAdmin lets administrators through.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return s.requireUser(func(c echo.Context) error {
		if !currentUser(c).Admin {
			return forbidden("Only administrators may do this.")
		}
		return next(c)
	})
}

// requireGroupAdmin lets administrators and the admins of the group named by
// the :group parameter through. For an administrator an unknown group is 404
// here, so that no handler of a group's pages runs for a group that does not
// exist (a group admin's membership says it does).
func (s *Server) requireGroupAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return s.requireUser(func(c echo.Context) error {
		u := currentUser(c)
		if u.Admin {
			if _, err := s.store.FindGroup(c.Request().Context(), c.Param("group")); err != nil {
				return err
			}
			return next(c)
		}
		if u.Administers(c.Param("group")) {
			return next(c)
		}
		return forbidden("Only administrators of this group may do this.")
	})
}

// requireGroupMember lets administrators and the members (of any role) of
// the group named by the :group parameter through. Read-only tokens pass for
// reading, as everywhere.
func (s *Server) requireGroupMember(next echo.HandlerFunc) echo.HandlerFunc {
	return s.requireUser(func(c echo.Context) error {
		u := currentUser(c)
		if u.Admin {
			return next(c)
		}
		if _, ok := u.RoleIn(c.Param("group")); ok {
			return next(c)
		}
		return forbidden("Only members of this group may see this.")
	})
}

// requireImageAdmin lets administrators through, and the group admins of
// the group that owns the image of the route (named by :name, or the image
// of the build :id). System images and other groups' images are refused
// with 403; a caller who administers no group is refused before any lookup.
func (s *Server) requireImageAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return s.requireUser(func(c echo.Context) error {
		u := currentUser(c)
		if u.Admin {
			return next(c)
		}
		if len(u.AdministeredGroups()) == 0 {
			return forbidden("Only administrators and group admins may do this.")
		}
		owner, err := s.routeImageOwner(c)
		if err != nil {
			return err
		}
		if owner == store.OwnerSystem || !u.Administers(owner) {
			return forbidden("Only administrators and the group admins of the image's own group may do this.")
		}
		return next(c)
	})
}

// routeImageOwner is the owner of the image the route is about.
func (s *Server) routeImageOwner(c echo.Context) (string, error) {
	ctx := c.Request().Context()
	name := c.Param("name")
	if name == "" {
		id, err := buildParam(c)
		if err != nil {
			return "", err
		}
		b, err := s.store.FindBuild(ctx, id)
		if err != nil {
			return "", err
		}
		name = b.Image
	}
	img, err := s.store.FindImage(ctx, name)
	if err != nil {
		return "", err
	}
	return img.Owner, nil
}

// signInFirst answers an anonymous request for a protected route.
func (s *Server) signInFirst(c echo.Context) error {
	if wantsJSON(c) {
		return store.Errorf(store.EUNAUTHORIZED, "Sign in or send an API token.")
	}
	next := c.Request().URL.RequestURI()
	if c.Request().Method != http.MethodGet {
		next = ""
	}
	target := "/login"
	if next != "" && next != "/" {
		target += "?next=" + url.QueryEscape(next)
	}
	if isHTMX(c) {
		// htmx would swap the sign-in page into a fragment; load it whole.
		c.Response().Header().Set("HX-Redirect", target)
		return c.NoContent(http.StatusUnauthorized)
	}
	return c.Redirect(http.StatusSeeOther, target)
}

// isSafeMethod reports whether a request of method m only reads.
func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
