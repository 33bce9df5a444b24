package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Access says who may call a route; each level has its own middleware
// (access.go).
type Access string

// The access levels.
const (
	// AccessPublic routes answer anyone: sign-in, health, static files.
	AccessPublic Access = "public"
	// AccessUser routes need a signed-in user (session or API token).
	AccessUser Access = "user"
	// AccessAdmin routes need an administrator.
	AccessAdmin Access = "admin"
	// AccessGroupAdmin routes need an administrator or an admin of the group
	// named by the route's :group parameter.
	AccessGroupAdmin Access = "groupadmin"
	// AccessGroupMember routes need an administrator or a member (of any
	// role) of the group named by the route's :group parameter.
	AccessGroupMember Access = "groupmember"
)

// route is one line of the route table. Paths use echo's syntax (":name"
// for a parameter, "*" for the rest of the path).
type route struct {
	Method  string
	Path    string
	Access  Access
	Handler echo.HandlerFunc
}

// RouteInfo describes a route for tests and documentation.
type RouteInfo struct {
	Method string
	Path   string
	Access string
}

// Routes lists every route the server answers, in table order.
func (s *Server) Routes() []RouteInfo {
	out := make([]RouteInfo, len(s.routes))
	for i, r := range s.routes {
		out[i] = RouteInfo{Method: r.Method, Path: r.Path, Access: string(r.Access)}
	}
	return out
}

// routeTable is the one place where URLs meet handlers. Helper endpoints of
// the image pages live under /admin/images/-/ because "-" can never start an
// image name, so they cannot shadow an image's own URL.
func (s *Server) routeTable() []route {
	const (
		get, post, patch, del = http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete
		public, user, admin   = AccessPublic, AccessUser, AccessAdmin
	)
	return []route{
		{get, "/healthz", public, s.healthz},
		{get, "/static/*", public, s.staticFiles()},
		{get, "/", public, s.home},
		{get, "/login", public, s.loginForm},
		{post, "/login", public, s.login},
		{post, "/logout", user, s.logout},

		// The signed-in user's own view.
		{get, "/images", user, s.selectionPage},

		// Images admin.
		{get, "/admin", admin, s.adminHome},
		{get, "/admin/images", admin, s.imagesPage},
		{get, "/admin/images/new", admin, s.newImageForm},
		{post, "/admin/images", admin, s.createImage},
		{get, "/admin/images/-/name-preview", admin, s.namePreview},
		{post, "/admin/images/-/check", admin, s.checkImage},
		{get, "/admin/images/:name", admin, s.imagePage},
		{get, "/admin/images/:name/edit", admin, s.editImageForm},
		{post, "/admin/images/:name", admin, s.updateImage},
		{del, "/admin/images/:name", admin, s.deleteImage},
		{post, "/admin/images/:name/delete", admin, s.deleteImageForm},
		{get, "/admin/images/:name/groups", admin, s.imageGroupsForm},
		{post, "/admin/images/:name/groups", admin, s.setImageGroups},
		{get, "/admin/images/:name/rebuild", admin, s.rebuildForm},
		{post, "/admin/images/:name/rebuild", admin, s.startRebuild},

		// Builds.
		{get, "/admin/builds/:id", admin, s.buildPage},
		{post, "/admin/builds/:id/cancel", admin, s.cancelBuildForm},

		// Pull secrets admin.
		{get, "/admin/secrets", admin, s.secretsPage},
		{post, "/admin/secrets", admin, s.createSecret},
		{del, "/admin/secrets/:name", admin, s.deleteSecret},
		{post, "/admin/secrets/:name/delete", admin, s.deleteSecretForm},

		// Groups admin (members come with the users pages).
		{get, "/admin/groups", admin, s.groupsPage},
		{post, "/admin/groups", admin, s.createGroup},
		{get, "/admin/groups/:name/edit", admin, s.editGroupForm},
		{post, "/admin/groups/:name", admin, s.renameGroup},
		{del, "/admin/groups/:name", admin, s.deleteGroup},
		{post, "/admin/groups/:name/delete", admin, s.deleteGroupForm},

		// JSON API.
		{get, "/api/v1/images", admin, s.apiListImages},
		{post, "/api/v1/images", admin, s.apiCreateImage},
		{get, "/api/v1/images/:name", admin, s.apiGetImage},
		{patch, "/api/v1/images/:name", admin, s.apiPatchImage},
		{del, "/api/v1/images/:name", admin, s.apiDeleteImage},
		{post, "/api/v1/images/:name/rebuild", admin, s.apiRebuild},
		{get, "/api/v1/images/:name/builds", admin, s.apiImageBuilds},
		{get, "/api/v1/builds/:id", admin, s.apiGetBuild},
		{post, "/api/v1/builds/:id/cancel", admin, s.apiCancelBuild},
		{get, "/api/v1/builds/:id/log", admin, s.apiBuildLog},
		{get, "/api/v1/secrets", admin, s.apiListSecrets},
		{post, "/api/v1/secrets", admin, s.apiCreateSecret},
		{del, "/api/v1/secrets/:name", admin, s.apiDeleteSecret},
		{get, "/api/v1/groups", admin, s.apiListGroups},
		{post, "/api/v1/groups", admin, s.apiCreateGroup},
		{get, "/api/v1/me/images", user, s.apiMyImages},
	}
}
