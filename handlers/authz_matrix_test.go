package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"

	"imagehub/buildah/buildlog"
	"imagehub/store"
)

// The authorization matrix: every route of the route table, requested by
// each kind of caller, with the status each must get. A route without a row
// fails the test, so whoever adds a route adds its row here.
//
// A row's key is "METHOD PATH" as in the route table, optionally followed by
// " | variant" when a route is checked on more than one object (a system
// image and a group's image, say). Path parameters get the defaults of
// (*authzFixture).param unless the row's params or fresh say otherwise.
//
// The callers, in the order they make their requests (administrators last,
// so that a request that succeeds and destroys something is the last one on
// a shared object):
//
//	anon     nobody signed in
//	user     alice, a member of team-g
//	gadminH  hank, a group admin of team-h
//	gadminG  gina, a group admin of team-g
//	admin    admin, an administrator

// expect is the status each caller must get.
type expect struct{ anon, user, gadminG, gadminH, admin int }

// authzRow is one line of the matrix.
type authzRow struct {
	want expect
	// params overrides path parameters.
	params map[string]string
	// fresh, when set, runs before each caller's request and returns path
	// parameters naming objects made for that request alone (the request
	// may delete or change them).
	fresh func(f *authzFixture) map[string]string
	// body is the request body: url.Values is sent as a form (with the
	// caller's CSRF token), anything else as JSON; nil sends none (a form
	// with only the CSRF token for pages).
	body func(f *authzFixture) any
	// ownClients signs each caller in anew for this row (for sign-out).
	ownClients bool
}

// Shorthands for the common rows.
var (
	// Pages only an administrator may open: anonymous callers are sent to
	// sign in, everyone else is refused.
	adminPage = func(admin int) expect { return expect{303, 403, 403, 403, admin} }
	// API routes only an administrator may call.
	adminAPI = func(admin int) expect { return expect{401, 403, 403, 403, admin} }
	// Pages and API routes any signed-in user may use.
	userPage = func(status int) expect { return expect{303, status, status, status, status} }
	userAPI  = func(status int) expect { return expect{401, status, status, status, status} }
	// Pages and API routes of team-g's own images: its group admins and
	// administrators.
	groupPage = func(status int) expect { return expect{303, 403, status, 403, status} }
	groupAPI  = func(status int) expect { return expect{401, 403, status, 403, status} }
)

func authzMatrix() map[string]authzRow {
	form := func(kv ...string) func(*authzFixture) any {
		return func(*authzFixture) any {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Add(kv[i], kv[i+1])
			}
			return v
		}
	}
	jsonBody := func(v any) func(*authzFixture) any { return func(*authzFixture) any { return v } }
	freshSystemImage := func(f *authzFixture) map[string]string {
		return map[string]string{"name": f.newImage(store.OwnerSystem, false)}
	}
	freshSystemCustom := func(f *authzFixture) map[string]string {
		return map[string]string{"name": f.newImage(store.OwnerSystem, true)}
	}
	freshSystemBuild := func(f *authzFixture) map[string]string {
		return map[string]string{"id": strconv.FormatInt(f.newBuild(f.newImage(store.OwnerSystem, true)), 10)}
	}
	freshSecret := func(f *authzFixture) map[string]string { return map[string]string{"name": f.newSecret()} }
	freshGroup := func(f *authzFixture) map[string]string { return map[string]string{"group": f.newGroup()} }
	freshMember := func(f *authzFixture) map[string]string {
		f.must(f.env.store.SetMember(context.Background(), "team-g", "bob", store.RoleMember))
		return map[string]string{"group": "team-g", "username": "bob"}
	}
	freshUser := func(f *authzFixture) map[string]string { return map[string]string{"username": f.newUser()} }
	freshAliceToken := func(f *authzFixture) map[string]string { return map[string]string{"id": f.newToken("alice")} }
	recipeForm := form("baseImage", "docker.io/library/debian:bookworm", "pip", "numpy")
	freshGroupImage := func(f *authzFixture) map[string]string { return map[string]string{"name": f.newImage("team-g", false)} }
	freshGroupCustom := func(f *authzFixture) map[string]string { return map[string]string{"name": f.newImage("team-g", true)} }
	freshGroupBuild := func(f *authzFixture) map[string]string {
		return map[string]string{"id": strconv.FormatInt(f.newBuild(f.newImage("team-g", true)), 10)}
	}
	gBuild := func(f *authzFixture) map[string]string {
		return map[string]string{"id": strconv.FormatInt(f.gBuild, 10)}
	}
	sysBuild := func(f *authzFixture) map[string]string {
		return map[string]string{"id": strconv.FormatInt(f.sysBuild, 10)}
	}
	hImage := map[string]string{"name": "h-img"}
	// A build with a package list, and an image with two such builds.
	listedBuild := func(owner string) func(f *authzFixture) map[string]string {
		return func(f *authzFixture) map[string]string {
			_, _, id := f.env.listedImage(f.unique("listed"), owner)
			return map[string]string{"id": strconv.FormatInt(id, 10)}
		}
	}
	listedImage := func(owner string) func(f *authzFixture) map[string]string {
		return func(f *authzFixture) map[string]string {
			name, _, _ := f.env.listedImage(f.unique("listed"), owner)
			return map[string]string{"name": name}
		}
	}
	newGroupImageForm := func(f *authzFixture) any {
		return url.Values{"displayName": {f.unique("group-page-img")}, "type": {"cpu"}, "url": {"busybox"}}
	}

	return map[string]authzRow{
		// Public.
		"GET /healthz":          {want: expect{200, 200, 200, 200, 200}},
		"GET /metrics":          {want: adminAPI(200)},
		"GET /static/*":         {want: expect{200, 200, 200, 200, 200}},
		"GET /":                 {want: expect{303, 303, 303, 303, 303}},
		"GET /login":            {want: expect{200, 303, 303, 303, 303}},
		"POST /login":           {want: expect{401, 401, 401, 401, 401}, body: form("username", "nobody", "password", "wrong-password")},
		"POST /logout":          {want: userPage(303), ownClients: true},
		"GET /images":           {want: userPage(200)},
		"GET /admin":            {want: adminPage(303)},
		"GET /admin/images":     {want: adminPage(200)},
		"GET /admin/images/new": {want: adminPage(200)},
		"POST /admin/images": {want: adminPage(303), body: func(f *authzFixture) any {
			return url.Values{"displayName": {f.unique("page-img")}, "type": {"cpu"}, "url": {"busybox"}, "global": {"on"}}
		}},
		"GET /admin/images/-/name-preview": {want: adminPage(200)},
		"POST /admin/images/-/check":       {want: adminPage(200), body: form("url", "busybox")},
		"GET /admin/images/:name":          {want: adminPage(200)},
		"GET /admin/images/:name/edit":     {want: adminPage(200)},
		"POST /admin/images/:name": {want: adminPage(303),
			body: form("displayName", "sys-img", "type", "cpu", "url", "busybox", "groups", "team-g")},
		"DELETE /admin/images/:name":                   {want: adminPage(204), fresh: freshSystemImage},
		"POST /admin/images/:name/delete":              {want: adminPage(303), fresh: freshSystemImage},
		"GET /admin/images/:name/groups":               {want: adminPage(200)},
		"GET /admin/images/:name/groups | group image": {want: adminPage(409), params: map[string]string{"name": "g-img"}},
		"POST /admin/images/:name/groups":              {want: adminPage(303), body: form("groups", "team-g")},
		"GET /admin/images/:name/rebuild":              {want: adminPage(200), params: map[string]string{"name": "sys-custom"}},
		"POST /admin/images/:name/rebuild":             {want: adminPage(303), fresh: freshSystemCustom, body: recipeForm},
		"POST /admin/images/:name/base-check":          {want: adminPage(303), params: map[string]string{"name": "sys-custom"}},
		"POST /admin/images/:name/base-rebuild":        {want: adminPage(303), fresh: freshSystemCustom},
		"GET /admin/builds/:id":                        {want: adminPage(200)},
		"GET /admin/builds/:id/progress":               {want: adminPage(200)},
		"POST /admin/builds/:id/cancel":                {want: adminPage(303), fresh: freshSystemBuild},
		"GET /admin/settings":                          {want: adminPage(200)},
		"POST /admin/settings":                         {want: adminPage(303), body: form("condaChannels", "conda-forge")},
		"GET /admin/secrets":                           {want: adminPage(200)},
		"POST /admin/secrets": {want: adminPage(303), body: func(f *authzFixture) any {
			return url.Values{"name": {f.unique("page-sec")}, "registryHost": {"registry.example.com"}, "username": {"u"}, "password": {"p"}}
		}},
		"DELETE /admin/secrets/:name":      {want: adminPage(204), fresh: freshSecret},
		"POST /admin/secrets/:name/delete": {want: adminPage(303), fresh: freshSecret},

		// Groups and members.
		"GET /admin/groups": {want: adminPage(200)},
		"POST /admin/groups": {want: adminPage(303), body: func(f *authzFixture) any {
			return url.Values{"name": {f.unique("page-group")}}
		}},
		"GET /admin/groups/:group/edit": {want: adminPage(200)},
		"POST /admin/groups/:group": {want: adminPage(303), fresh: freshGroup, body: func(f *authzFixture) any {
			return url.Values{"name": {f.unique("renamed")}}
		}},
		"DELETE /admin/groups/:group":                        {want: adminPage(204), fresh: freshGroup},
		"POST /admin/groups/:group/delete":                   {want: adminPage(303), fresh: freshGroup},
		"POST /admin/groups/:group/members":                  {want: adminPage(303), body: form("username", "bob", "role", "member")},
		"DELETE /admin/groups/:group/members/:username":      {want: adminPage(204), fresh: freshMember},
		"POST /admin/groups/:group/members/:username/delete": {want: adminPage(303), fresh: freshMember},

		// Users.
		"GET /admin/users": {want: adminPage(200)},
		"POST /admin/users": {want: adminPage(303), body: func(f *authzFixture) any {
			return url.Values{"username": {f.unique("page-user")}, "password": {"password-1"}}
		}},
		"GET /admin/users/:username":           {want: adminPage(200)},
		"POST /admin/users/:username/password": {want: adminPage(303), body: form("password", "new-password-1")},
		"POST /admin/users/:username/admin":    {want: adminPage(303), body: form("admin", "false")},
		"DELETE /admin/users/:username":        {want: adminPage(204), fresh: freshUser},
		"POST /admin/users/:username/delete":   {want: adminPage(303), fresh: freshUser},
		"POST /admin/users/:username/admin | self": {want: expect{303, 403, 403, 403, 422},
			params: map[string]string{"username": "admin"}, body: form("admin", "false")},
		"DELETE /admin/users/:username | self": {want: expect{303, 403, 403, 403, 409}, params: map[string]string{"username": "admin"}},

		// The disk page and the registry's garbage collection.
		"GET /admin/disk":      {want: adminPage(200)},
		"POST /admin/disk/gc":  {want: adminPage(303)},
		"GET /api/v1/disk":     {want: adminAPI(200)},
		"POST /api/v1/disk/gc": {want: adminAPI(202)},

		// API tokens: everyone their own; an administrator all.
		"GET /account/tokens":             {want: userPage(200)},
		"POST /account/tokens":            {want: userPage(201), body: form("name", "ci", "scope", "read")},
		"DELETE /account/tokens/:id":      {want: expect{303, 204, 404, 404, 204}, fresh: freshAliceToken},
		"POST /account/tokens/:id/delete": {want: expect{303, 303, 404, 404, 303}, fresh: freshAliceToken},
		"GET /api/v1/tokens":              {want: userAPI(200)},
		"POST /api/v1/tokens":             {want: userAPI(201), body: jsonBody(map[string]string{"name": "ci", "scope": "read"})},
		"DELETE /api/v1/tokens/:id":       {want: expect{401, 204, 404, 404, 204}, fresh: freshAliceToken},

		// The image API.
		"GET /api/v1/images": {want: adminAPI(200)},
		"POST /api/v1/images": {want: adminAPI(201), body: func(f *authzFixture) any {
			return map[string]any{"displayName": f.unique("api-img"), "type": "cpu", "url": "busybox", "global": true}
		}},
		"GET /api/v1/images/:name":          {want: adminAPI(200)},
		"PATCH /api/v1/images/:name":        {want: adminAPI(200), body: jsonBody(map[string]string{"description": "patched"})},
		"DELETE /api/v1/images/:name":       {want: adminAPI(204), fresh: freshSystemImage},
		"POST /api/v1/images/:name/rebuild": {want: adminAPI(202), fresh: freshSystemCustom},
		// Nothing to compare: no build of the image succeeded (409).
		"POST /api/v1/images/:name/base-check": {want: adminAPI(409), params: map[string]string{"name": "sys-custom"}},
		"GET /api/v1/images/:name/builds":      {want: adminAPI(200), params: map[string]string{"name": "sys-custom"}},
		"GET /api/v1/builds/:id":               {want: adminAPI(200)},
		"POST /api/v1/builds/:id/cancel":       {want: adminAPI(200), fresh: freshSystemBuild},
		"GET /api/v1/builds/:id/log":           {want: adminAPI(200)},
		"GET /api/v1/builds/:id/packages":      {want: adminAPI(200), fresh: listedBuild(store.OwnerSystem)},
		"GET /api/v1/images/:name/diff":        {want: adminAPI(200), fresh: listedImage(store.OwnerSystem)},
		"GET /api/v1/settings/packages":        {want: adminAPI(200)},
		"PUT /api/v1/settings/packages":        {want: adminAPI(200), body: jsonBody(map[string]any{"condaChannels": "conda-forge"})},
		"GET /api/v1/secrets":                  {want: adminAPI(200)},
		"POST /api/v1/secrets": {want: adminAPI(201), body: func(f *authzFixture) any {
			return map[string]string{"name": f.unique("api-sec"), "registryHost": "registry.example.com", "username": "u", "password": "p"}
		}},
		"DELETE /api/v1/secrets/:name": {want: adminAPI(204), fresh: freshSecret},

		// Groups, members and the launcher's selection.
		"GET /api/v1/groups": {want: adminAPI(200)},
		"POST /api/v1/groups": {want: adminAPI(201), body: func(f *authzFixture) any {
			return map[string]string{"name": f.unique("api-group")}
		}},
		"PUT /api/v1/groups/:group/members/:username":    {want: adminAPI(200), body: jsonBody(map[string]string{"role": "member"})},
		"DELETE /api/v1/groups/:group/members/:username": {want: adminAPI(204), fresh: freshMember},
		"GET /api/v1/groups/:group/selection":            {want: expect{401, 200, 200, 403, 200}},
		"GET /api/v1/groups/:group/selection | h":        {want: expect{401, 403, 403, 200, 200}, params: map[string]string{"group": "team-h"}},

		// Users.
		"GET /api/v1/users": {want: adminAPI(200)},
		"POST /api/v1/users": {want: adminAPI(201), body: func(f *authzFixture) any {
			return map[string]string{"username": f.unique("api-user"), "password": "password-1"}
		}},
		"GET /api/v1/users/:username":           {want: adminAPI(200)},
		"PATCH /api/v1/users/:username":         {want: adminAPI(200), body: jsonBody(map[string]any{"admin": false})},
		"PATCH /api/v1/users/:username | self":  {want: adminAPI(422), params: map[string]string{"username": "admin"}, body: jsonBody(map[string]any{"admin": false})},
		"DELETE /api/v1/users/:username":        {want: adminAPI(204), fresh: freshUser},
		"DELETE /api/v1/users/:username | self": {want: adminAPI(409), params: map[string]string{"username": "admin"}},

		"GET /api/v1/me/images": {want: userAPI(200)},

		// team-g's own images, in the pages of its scope. The defaults are
		// team-g, its image g-img and a build of its custom image; an image
		// of another owner is "not found" in team-g's scope, even for an
		// administrator (who has it in /admin/images).
		"GET /groups/:group/images":                        {want: groupPage(200)},
		"GET /groups/:group/images | h":                    {want: expect{303, 403, 403, 200, 200}, params: map[string]string{"group": "team-h"}},
		"GET /groups/:group/images | unknown group":        {want: expect{303, 403, 403, 403, 404}, params: map[string]string{"group": "nope"}},
		"GET /groups/:group/images/new":                    {want: groupPage(200)},
		"POST /groups/:group/images":                       {want: groupPage(303), body: newGroupImageForm},
		"GET /groups/:group/images/-/name-preview":         {want: groupPage(200)},
		"POST /groups/:group/images/-/check":               {want: groupPage(200), body: form("url", "busybox")},
		"GET /groups/:group/images/:name":                  {want: groupPage(200)},
		"GET /groups/:group/images/:name | system image":   {want: groupPage(404), params: map[string]string{"name": "sys-img"}},
		"GET /groups/:group/images/:name | h's image":      {want: groupPage(404), params: hImage},
		"GET /groups/:group/images/:name | in h's scope":   {want: expect{303, 403, 403, 200, 200}, params: map[string]string{"group": "team-h", "name": "h-img"}},
		"GET /groups/:group/images/:name/edit":             {want: groupPage(200)},
		"GET /groups/:group/images/:name/edit | h's image": {want: groupPage(404), params: hImage},
		"POST /groups/:group/images/:name": {want: groupPage(303),
			body: form("displayName", "g-img", "type", "cpu", "url", "busybox")},
		"POST /groups/:group/images/:name | system image": {want: groupPage(404), params: map[string]string{"name": "sys-img"},
			body: form("displayName", "sys-img", "type", "cpu", "url", "busybox", "global", "on")},
		"DELETE /groups/:group/images/:name":                     {want: groupPage(204), fresh: freshGroupImage},
		"DELETE /groups/:group/images/:name | system image":      {want: groupPage(404), fresh: freshSystemImage},
		"POST /groups/:group/images/:name/delete":                {want: groupPage(303), fresh: freshGroupImage},
		"POST /groups/:group/images/:name/delete | h's":          {want: groupPage(404), params: hImage},
		"GET /groups/:group/images/:name/rebuild":                {want: groupPage(200), params: map[string]string{"name": "g-custom"}},
		"POST /groups/:group/images/:name/rebuild":               {want: groupPage(303), fresh: freshGroupCustom, body: recipeForm},
		"POST /groups/:group/images/:name/rebuild | system":      {want: groupPage(404), fresh: freshSystemCustom, body: recipeForm},
		"POST /groups/:group/images/:name/base-check":            {want: groupPage(303), params: map[string]string{"name": "g-custom"}},
		"POST /groups/:group/images/:name/base-check | system":   {want: groupPage(404), params: map[string]string{"name": "sys-custom"}},
		"POST /groups/:group/images/:name/base-rebuild":          {want: groupPage(303), fresh: freshGroupCustom},
		"POST /groups/:group/images/:name/base-rebuild | system": {want: groupPage(404), fresh: freshSystemCustom},
		"GET /groups/:group/builds/:id":                          {want: groupPage(200)},
		"GET /groups/:group/builds/:id | system build":           {want: groupPage(404), fresh: sysBuild},
		"GET /groups/:group/builds/:id/progress":                 {want: groupPage(200)},
		"GET /groups/:group/builds/:id/progress | system":        {want: groupPage(404), fresh: sysBuild},
		"POST /groups/:group/builds/:id/cancel":                  {want: groupPage(303), fresh: freshGroupBuild},
		"POST /groups/:group/builds/:id/cancel | system":         {want: groupPage(404), fresh: freshSystemBuild},

		// team-g's own images in the API.
		"GET /api/v1/groups/:group/images":     {want: groupAPI(200)},
		"GET /api/v1/groups/:group/images | h": {want: expect{401, 403, 403, 200, 200}, params: map[string]string{"group": "team-h"}},
		"POST /api/v1/groups/:group/images": {want: groupAPI(201), body: func(f *authzFixture) any {
			return map[string]any{"displayName": f.unique("group-api-img"), "type": "cpu", "url": "busybox"}
		}},
		"POST /api/v1/groups/:group/images | global": {want: groupAPI(422), body: func(f *authzFixture) any {
			return map[string]any{"displayName": f.unique("group-api-img"), "type": "cpu", "url": "busybox", "global": true}
		}},
		"GET /api/v1/images/:name | group":             {want: groupAPI(200), params: map[string]string{"name": "g-img"}},
		"GET /api/v1/images/:name | h":                 {want: expect{401, 403, 403, 200, 200}, params: hImage},
		"GET /api/v1/images/:name | unknown":           {want: expect{401, 403, 404, 404, 404}, params: map[string]string{"name": "nope"}},
		"PATCH /api/v1/images/:name | group":           {want: groupAPI(200), params: map[string]string{"name": "g-img"}, body: jsonBody(map[string]string{"description": "patched"})},
		"PATCH /api/v1/images/:name | group to global": {want: groupAPI(422), params: map[string]string{"name": "g-img"}, body: jsonBody(map[string]bool{"global": true})},
		"DELETE /api/v1/images/:name | group":          {want: groupAPI(204), fresh: freshGroupImage},
		"POST /api/v1/images/:name/rebuild | group":    {want: groupAPI(202), fresh: freshGroupCustom},
		"POST /api/v1/images/:name/base-check | group": {want: groupAPI(409), params: map[string]string{"name": "g-custom"}},
		"GET /api/v1/images/:name/builds | group":      {want: groupAPI(200), params: map[string]string{"name": "g-custom"}},
		"GET /api/v1/builds/:id | group":               {want: groupAPI(200), fresh: gBuild},
		"POST /api/v1/builds/:id/cancel | group":       {want: groupAPI(200), fresh: freshGroupBuild},
		"GET /api/v1/builds/:id/log | group":           {want: groupAPI(200), fresh: gBuild},
		"GET /api/v1/builds/:id/packages | group":      {want: groupAPI(200), fresh: listedBuild("team-g")},
		"GET /api/v1/images/:name/diff | group":        {want: groupAPI(200), fresh: listedImage("team-g")},
	}
}

// authzFixture is the world the matrix runs in.
type authzFixture struct {
	t   *testing.T
	env *testEnv
	n   int
	// sysBuild is a build of the system image sys-custom, gBuild one of
	// team-g's own g-custom.
	sysBuild, gBuild int64
}

func (f *authzFixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// unique returns a new name with the prefix.
func (f *authzFixture) unique(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%d", prefix, f.n)
}

// newImage stores a ready image (or a custom one, not ready) of owner.
func (f *authzFixture) newImage(owner string, custom bool) string {
	f.t.Helper()
	img := &store.Image{DisplayName: f.unique("img"), Type: store.TypeCPU, Owner: owner}
	if custom {
		img.Recipe = &store.Recipe{BaseImage: "docker.io/library/debian:bookworm", Pip: "numpy"}
	} else {
		img.URL = "docker.io/library/busybox:latest"
	}
	if owner == store.OwnerSystem {
		img.Groups = []string{"team-g"}
	}
	f.must(f.env.store.CreateImage(context.Background(), img))
	return img.Name
}

// newBuild queues a build of a custom image.
func (f *authzFixture) newBuild(image string) int64 {
	f.t.Helper()
	img, err := f.env.store.FindImage(context.Background(), image)
	f.must(err)
	b, err := f.env.store.CreateBuild(context.Background(), image, *img.Recipe, "127.0.0.1:5000/imagehub/"+image+":abc")
	f.must(err)
	return b.ID
}

func (f *authzFixture) newSecret() string {
	name := f.unique("sec")
	f.must(f.env.store.CreateSecret(context.Background(), &store.Secret{Name: name, RegistryHost: "r.example.com", Username: "u", Password: "p"}))
	return name
}

func (f *authzFixture) newGroup() string {
	name := f.unique("grp")
	f.must(f.env.store.CreateGroup(context.Background(), &store.Group{Name: name}))
	return name
}

func (f *authzFixture) newUser() string {
	name := f.unique("usr")
	f.must(f.env.store.CreateUser(context.Background(), &store.User{Username: name, Password: "password-1"}))
	return name
}

func (f *authzFixture) newToken(owner string) string {
	_, tok, err := f.env.store.CreateToken(context.Background(), owner, "t", store.ScopeRead)
	f.must(err)
	return strconv.FormatInt(tok.ID, 10)
}

// param is the default value of a path parameter: an object every caller
// may ask for again and again.
func (f *authzFixture) param(path, name string) string {
	switch {
	case name == "name" && strings.HasPrefix(path, "/groups/"):
		return "g-img"
	case name == "id" && strings.HasPrefix(path, "/groups/"):
		return strconv.FormatInt(f.gBuild, 10)
	case name == "name" && (strings.HasPrefix(path, "/admin/images/") || strings.HasPrefix(path, "/api/v1/images/")):
		return "sys-img"
	case name == "name" && strings.Contains(path, "/secrets/"):
		return "sec"
	case name == "group":
		return "team-g"
	case name == "username":
		return "bob"
	case name == "id" && strings.Contains(path, "/builds/"):
		return strconv.FormatInt(f.sysBuild, 10)
	}
	f.t.Fatalf("%s: no default for :%s; give the row params or fresh", path, name)
	return ""
}

// fillPath puts the parameters into a route's path.
func (f *authzFixture) fillPath(path string, params map[string]string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		switch {
		case p == "*":
			parts[i] = "app.css"
		case strings.HasPrefix(p, ":"):
			v, ok := params[p[1:]]
			if !ok {
				v = f.param(path, p[1:])
			}
			parts[i] = url.PathEscape(v)
		}
	}
	return strings.Join(parts, "/")
}

// newAuthzFixture builds the matrix's world: groups team-g and team-h,
// their members and admins, a system image granted to team-g, each group's
// own image, custom images with builds, a secret. The server has a registry
// prefix and a log hub, so that the build routes answer as in production
// (without a queue, builds stay queued).
func newAuthzFixture(t *testing.T) *authzFixture {
	env := newTestEnv(t)
	env.server.registry = "127.0.0.1:5000/imagehub"
	env.server.logs = buildlog.NewHub(t.TempDir())
	f := &authzFixture{t: t, env: env}
	ctx := context.Background()
	for _, g := range []string{"team-g", "team-h"} {
		env.mustCreateGroup(g)
	}
	for _, u := range []string{"gina", "hank", "bob"} {
		f.must(env.store.CreateUser(ctx, &store.User{Username: u, Password: testAdminPassword}))
	}
	f.must(env.store.SetMember(ctx, "team-g", "alice", store.RoleMember))
	f.must(env.store.SetMember(ctx, "team-g", "gina", store.RoleAdmin))
	f.must(env.store.SetMember(ctx, "team-h", "hank", store.RoleAdmin))
	env.mustCreateSecret("sec")
	env.mustCreateImage(&store.Image{DisplayName: "sys-img", URL: "docker.io/library/busybox:latest", Groups: []string{"team-g"}})
	env.mustCreateImage(&store.Image{DisplayName: "g-img", URL: "docker.io/library/busybox:latest", Owner: "team-g"})
	env.mustCreateImage(&store.Image{DisplayName: "h-img", URL: "docker.io/library/busybox:latest", Owner: "team-h"})
	recipe := &store.Recipe{BaseImage: "docker.io/library/debian:bookworm", Pip: "numpy"}
	env.mustCreateImage(&store.Image{DisplayName: "sys-custom", Recipe: recipe, Global: true})
	f.sysBuild = f.newBuild("sys-custom")
	env.mustCreateImage(&store.Image{DisplayName: "g-custom", Recipe: recipe, Owner: "team-g"})
	f.gBuild = f.newBuild("g-custom")
	return f
}

// authzCaller is one of the matrix's callers.
type authzCaller struct {
	name     string
	username string // "" for anonymous
	want     func(expect) int
}

var authzCallers = []authzCaller{
	{"anon", "", func(e expect) int { return e.anon }},
	{"user", "alice", func(e expect) int { return e.user }},
	{"gadminH", "hank", func(e expect) int { return e.gadminH }},
	{"gadminG", "gina", func(e expect) int { return e.gadminG }},
	{"admin", "admin", func(e expect) int { return e.admin }},
}

// client returns a client of the caller: anonymous with the sign-in page's
// CSRF token, or signed in.
func (f *authzFixture) client(who authzCaller) *client {
	if who.username == "" {
		c := f.env.anonymous()
		c.getPage("/login")
		return c
	}
	return f.env.signIn(who.username)
}

// TestAuthorizationMatrix walks every route of the table with every caller.
func TestAuthorizationMatrix(t *testing.T) {
	f := newAuthzFixture(t)
	matrix := authzMatrix()
	routes := map[string]bool{}
	for _, r := range f.env.server.Routes() {
		routes[r.Method+" "+r.Path] = true
	}
	covered := map[string]bool{}
	keys := make([]string, 0, len(matrix))
	for k := range matrix {
		route, _, _ := strings.Cut(k, " | ")
		if !routes[route] {
			t.Errorf("matrix row %q: no such route in the table", k)
		}
		covered[route] = true
		keys = append(keys, k)
	}
	var missing []string
	for r := range routes {
		if !covered[r] {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	for _, r := range missing {
		t.Errorf("route %s has no row in the authorization matrix (authz_matrix_test.go): add one", r)
	}
	// Rows run in a fixed order: those that only read first, then those that
	// write, then sign-outs and the changes to the callers' own accounts.
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rowRank(keys[i]), rowRank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	clients := map[string]*client{}
	for _, who := range authzCallers {
		clients[who.name] = f.client(who)
	}
	checked := 0
	for _, k := range keys {
		row := matrix[k]
		method, path, _ := strings.Cut(strings.SplitN(k, " | ", 2)[0], " ")
		for _, who := range authzCallers {
			c := clients[who.name]
			if row.ownClients {
				c = f.client(who)
			}
			params := map[string]string{}
			for p, v := range row.params {
				params[p] = v
			}
			if row.fresh != nil {
				for p, v := range row.fresh(f) {
					params[p] = v
				}
			}
			var body any
			if row.body != nil {
				body = row.body(f)
			}
			res := f.send(c, method, f.fillPath(path, params), body)
			got, want := res.StatusCode, who.want(row.want)
			if got != want {
				t.Errorf("%s as %s (%s): %d, want %d: %s", k, who.name, who.username, got, want, snippet(res))
			}
			res.Body.Close()
			checked++
		}
	}
	t.Logf("authorization matrix: %d rows, %d routes, %d requests", len(matrix), len(routes), checked)
}

// rowRank orders the rows: reads, writes, then rows that change the callers.
func rowRank(key string) int {
	switch {
	case strings.HasPrefix(key, "POST /logout"):
		return 3
	case strings.HasPrefix(key, "GET "):
		return 0
	}
	return 1
}

// send makes a matrix request: a form (with the CSRF token) or JSON body,
// the CSRF header, and Accept: application/json for the API.
func (f *authzFixture) send(c *client, method, path string, body any) *http.Response {
	h := map[string]string{"X-CSRF-Token": c.csrf}
	if strings.HasPrefix(path, "/api/") {
		h["Accept"] = "application/json"
	}
	var r io.Reader
	switch b := body.(type) {
	case nil:
		if method != http.MethodGet && !strings.HasPrefix(path, "/api/") {
			r = strings.NewReader(url.Values{"_csrf": {c.csrf}}.Encode())
			h["Content-Type"] = "application/x-www-form-urlencoded"
		}
	case url.Values:
		b.Set("_csrf", c.csrf)
		r = strings.NewReader(b.Encode())
		h["Content-Type"] = "application/x-www-form-urlencoded"
	default:
		raw, err := json.Marshal(b)
		f.must(err)
		r = strings.NewReader(string(raw))
		h["Content-Type"] = "application/json"
	}
	return c.request(method, path, r, h)
}

// snippet is the start of an answer, for a failure message.
func snippet(res *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4000))
	s := string(b)
	if i := strings.Index(s, `class="error-message"`); i >= 0 {
		s = s[i:]
	} else if i := strings.Index(s, `field-error`); i >= 0 {
		s = s[i:]
	}
	if len(s) > 240 {
		s = s[:240]
	}
	return strings.Join(strings.Fields(s), " ")
}
