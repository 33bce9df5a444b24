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
	// AccessImageAdmin routes need an administrator or a group admin of the
	// group that owns the image named by :name (or the image of the build
	// :id): a group admin manages their group's own images and nothing else.
	AccessImageAdmin Access = "imageadmin"
)

// route is one line of the route table. Paths use echo's syntax (":name"
// for a parameter, "*" for the rest of the path). A parameter has one name
// per concept: :group for a group, :username for a user, :name for an image
// or a secret, :id for a build or a token (routeParams, tested).
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
		put                   = http.MethodPut
		member, gadmin, image = AccessGroupMember, AccessGroupAdmin, AccessImageAdmin
	)
	return []route{
		{get, "/healthz", public, s.healthz},
		{get, metricsPath, admin, s.metrics},
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
		{post, "/admin/images/:name/delete", admin, s.deleteImage},
		{get, "/admin/images/:name/groups", admin, s.imageGroupsForm},
		{post, "/admin/images/:name/groups", admin, s.setImageGroups},
		{get, "/admin/images/:name/rebuild", admin, s.rebuildForm},
		{post, "/admin/images/:name/rebuild", admin, s.startRebuild},
		{post, "/admin/images/:name/base-check", admin, s.baseCheckForm},
		{post, "/admin/images/:name/base-rebuild", admin, s.baseRebuildForm},

		// Builds.
		{get, "/admin/builds/:id", admin, s.buildPage},
		{get, "/admin/builds/:id/progress", admin, s.buildProgress},
		{post, "/admin/builds/:id/cancel", admin, s.cancelBuildForm},

		// A group's own images, managed by its group admins (and
		// administrators): the same pages as above, scoped to the group.
		{get, "/groups/:group/images", gadmin, s.imagesPage},
		{get, "/groups/:group/images/new", gadmin, s.newImageForm},
		{post, "/groups/:group/images", gadmin, s.createImage},
		{get, "/groups/:group/images/-/name-preview", gadmin, s.namePreview},
		{post, "/groups/:group/images/-/check", gadmin, s.checkImage},
		{get, "/groups/:group/images/:name", gadmin, s.imagePage},
		{get, "/groups/:group/images/:name/edit", gadmin, s.editImageForm},
		{post, "/groups/:group/images/:name", gadmin, s.updateImage},
		{del, "/groups/:group/images/:name", gadmin, s.deleteImage},
		{post, "/groups/:group/images/:name/delete", gadmin, s.deleteImage},
		{get, "/groups/:group/images/:name/rebuild", gadmin, s.rebuildForm},
		{post, "/groups/:group/images/:name/rebuild", gadmin, s.startRebuild},
		{post, "/groups/:group/images/:name/base-check", gadmin, s.baseCheckForm},
		{post, "/groups/:group/images/:name/base-rebuild", gadmin, s.baseRebuildForm},
		{get, "/groups/:group/builds/:id", gadmin, s.buildPage},
		{get, "/groups/:group/builds/:id/progress", gadmin, s.buildProgress},
		{post, "/groups/:group/builds/:id/cancel", gadmin, s.cancelBuildForm},

		// Pull secrets admin.
		{get, "/admin/secrets", admin, s.secretsPage},
		{post, "/admin/secrets", admin, s.createSecret},
		{del, "/admin/secrets/:name", admin, s.deleteSecret},
		{post, "/admin/secrets/:name/delete", admin, s.deleteSecret},

		// Settings: the package mirrors builds use.
		{get, "/admin/settings", admin, s.settingsPage},
		{post, "/admin/settings", admin, s.saveSettings},

		// Groups admin, with their members and roles.
		{get, "/admin/groups", admin, s.groupsPage},
		{post, "/admin/groups", admin, s.createGroup},
		{get, "/admin/groups/:group/edit", admin, s.editGroupForm},
		{post, "/admin/groups/:group", admin, s.renameGroup},
		{del, "/admin/groups/:group", admin, s.deleteGroup},
		{post, "/admin/groups/:group/delete", admin, s.deleteGroup},
		{post, "/admin/groups/:group/members", admin, s.setMemberForm},
		{del, "/admin/groups/:group/members/:username", admin, s.removeMember},
		{post, "/admin/groups/:group/members/:username/delete", admin, s.removeMember},

		// Users admin.
		{get, "/admin/users", admin, s.usersPage},
		{post, "/admin/users", admin, s.createUser},
		{get, "/admin/users/:username", admin, s.userPage},
		{post, "/admin/users/:username/password", admin, s.resetPassword},
		{post, "/admin/users/:username/admin", admin, s.setUserAdmin},
		{del, "/admin/users/:username", admin, s.deleteUser},
		{post, "/admin/users/:username/delete", admin, s.deleteUser},

		// What imagehub keeps on disk, and the registry's garbage collection.
		{get, "/admin/disk", admin, s.diskPage},
		{post, "/admin/disk/gc", admin, s.collectGarbageForm},

		// The signed-in user's API tokens (an administrator's page lists all).
		{get, "/account/tokens", user, s.tokensPage},
		{post, "/account/tokens", user, s.createTokenForm},
		{del, "/account/tokens/:id", user, s.revokeToken},
		{post, "/account/tokens/:id/delete", user, s.revokeToken},

		// JSON API.
		{get, "/api/v1/images", admin, s.apiListImages},
		{post, "/api/v1/images", admin, s.apiCreateImage},
		{get, "/api/v1/images/:name", image, s.apiGetImage},
		{patch, "/api/v1/images/:name", image, s.apiPatchImage},
		{del, "/api/v1/images/:name", image, s.deleteImage},
		{post, "/api/v1/images/:name/rebuild", image, s.apiRebuild},
		{post, "/api/v1/images/:name/base-check", image, s.apiBaseCheck},
		{get, "/api/v1/images/:name/builds", image, s.apiImageBuilds},
		{get, "/api/v1/images/:name/diff", image, s.apiImageDiff},
		{get, "/api/v1/builds/:id", image, s.apiGetBuild},
		{post, "/api/v1/builds/:id/cancel", image, s.apiCancelBuild},
		{get, "/api/v1/builds/:id/log", image, s.apiBuildLog},
		{get, "/api/v1/builds/:id/packages", image, s.apiBuildPackages},
		{get, "/api/v1/secrets", admin, s.apiListSecrets},
		{post, "/api/v1/secrets", admin, s.apiCreateSecret},
		{del, "/api/v1/secrets/:name", admin, s.deleteSecret},
		{get, "/api/v1/settings/packages", admin, s.apiGetPackageSettings},
		{put, "/api/v1/settings/packages", admin, s.apiPutPackageSettings},
		{get, "/api/v1/groups", admin, s.apiListGroups},
		{post, "/api/v1/groups", admin, s.apiCreateGroup},
		{put, "/api/v1/groups/:group/members/:username", admin, s.apiSetMember},
		{del, "/api/v1/groups/:group/members/:username", admin, s.removeMember},
		{get, "/api/v1/groups/:group/selection", member, s.apiGroupSelection},
		{get, "/api/v1/groups/:group/images", gadmin, s.apiListImages},
		{post, "/api/v1/groups/:group/images", gadmin, s.apiCreateImage},
		{get, "/api/v1/users", admin, s.apiListUsers},
		{post, "/api/v1/users", admin, s.apiCreateUser},
		{get, "/api/v1/users/:username", admin, s.apiGetUser},
		{patch, "/api/v1/users/:username", admin, s.apiPatchUser},
		{del, "/api/v1/users/:username", admin, s.deleteUser},
		{get, "/api/v1/tokens", user, s.apiListTokens},
		{post, "/api/v1/tokens", user, s.apiCreateToken},
		{del, "/api/v1/tokens/:id", user, s.revokeToken},
		{get, "/api/v1/me/images", user, s.apiMyImages},
		{get, "/api/v1/disk", admin, s.apiGetDisk},
		{post, "/api/v1/disk/gc", admin, s.apiCollectGarbage},
	}
}
