package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"imagehub/buildah/buildlog"
	"imagehub/store"
)

// newGroupEnv is a server that records builds (no queue runs them), with
// team-g (alice a member, gina its group admin), team-h (hank its group
// admin), a System image granted to team-g and an image of team-h;
// configure, when given, changes the server's Config (see newTestEnv).
func newGroupEnv(t *testing.T, configure ...func(*Config)) *testEnv {
	t.Helper()
	env := newTestEnv(t, configure...)
	env.server.registry = "127.0.0.1:5000/imagehub"
	env.server.logs = buildlog.NewHub(t.TempDir())
	ctx := context.Background()
	env.mustCreateGroup("team-g")
	env.mustCreateGroup("team-h")
	for _, u := range []string{"gina", "hank"} {
		if err := env.store.CreateUser(ctx, &store.User{Username: u, Password: testAdminPassword}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []struct {
		group, user string
		role        store.Role
	}{{"team-g", "alice", store.RoleMember}, {"team-g", "gina", store.RoleAdmin}, {"team-h", "hank", store.RoleAdmin}} {
		if err := env.store.SetMember(ctx, m.group, m.user, m.role); err != nil {
			t.Fatal(err)
		}
	}
	env.mustCreateImage(&store.Image{DisplayName: "sys-python", URL: "docker.io/library/python:3", Groups: []string{"team-g"}})
	env.mustCreateImage(&store.Image{DisplayName: "h-own", URL: "docker.io/library/python:3", Owner: "team-h"})
	return env
}

func TestGroupImagesPages(t *testing.T) {
	env := newGroupEnv(t)
	gina := env.signIn("gina")
	doc, status := gina.getPage("/images")
	if status != http.StatusOK || doc.Find(`nav.mainnav a[href="/groups/team-g/images"]`).Text() != "Images of team-g" {
		t.Fatalf("gina's navigation lacks her group's images: %d", status)
	}
	if doc.Find(`nav.mainnav a[href="/groups/team-h/images"]`).Length() != 0 || doc.Find(`nav.mainnav a[href="/admin/images"]`).Length() != 0 {
		t.Error("gina is offered pages that are not hers")
	}
	doc, _ = gina.getPage("/groups/team-g/images")
	if got := doc.Find("h1").Text(); got != "Images of team-g" {
		t.Errorf("heading %q", got)
	}
	if n := doc.Find("#images-table tbody tr[id]").Length(); n != 0 {
		t.Errorf("%d rows in an empty group's table (the System and team-h images must not show)", n)
	}
	if doc.Find(`a#add-image[href="/groups/team-g/images/new"]`).Length() != 1 || doc.Find(".owner-filter").Length() != 0 {
		t.Error("+ Add is not scoped, or the administrators' owner filter is shown")
	}

	// The add form has no access choice and scoped helpers.
	doc, _ = gina.getPage("/groups/team-g/images/new")
	if doc.Find("#global").Length() != 0 || !strings.Contains(doc.Find("#group-access").Text(), "team-g") {
		t.Error("the add form offers global access, or does not say the image is the group's")
	}
	if doc.Find(`#displayName[data-hx-get="/groups/team-g/images/-/name-preview"]`).Length() != 1 || doc.Find(`form#image-form[action="/groups/team-g/images"]`).Length() != 1 {
		t.Error("the form's addresses are not scoped")
	}
	if res := gina.get("/groups/team-g/images/-/name-preview?displayName=new-one"); res.StatusCode != http.StatusOK || !strings.Contains(readAll(t, res.Body), "new-one") {
		t.Errorf("name preview: %d", res.StatusCode)
	}

	// Bad input comes back at the field; global and grants sent anyway are ignored.
	res := gina.postForm("/groups/team-g/images", url.Values{"displayName": {"Team Image"}, "type": {"cpu"}, "url": {"python:3.12"}})
	if doc := gina.readPage(res); res.StatusCode != http.StatusUnprocessableEntity || doc.Find("#displayName-error").Text() == "" {
		t.Fatalf("bad display name: %d", res.StatusCode)
	}
	res = gina.postForm("/groups/team-g/images", url.Values{"displayName": {"team-image"}, "type": {"cpu"}, "url": {"python:3.12"},
		"global": {"on"}, "groups": {"team-h"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/groups/team-g/images/team-image" {
		t.Fatalf("add: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	img, err := env.store.FindImage(t.Context(), "team-image")
	if err != nil || img.Owner != "team-g" || img.Global || strings.Join(img.Groups, ",") != "team-g" || img.URL != "docker.io/library/python:3.12" {
		t.Fatalf("stored: %+v %v", img, err)
	}
	doc, _ = gina.getPage("/groups/team-g/images/team-image")
	if doc.Find("#edit-groups").Length() != 0 || doc.Find(`a#edit-image[href="/groups/team-g/images/team-image/edit"]`).Length() != 1 {
		t.Error("the image page offers Edit Groups or an unscoped Edit")
	}
	if doc.Find(`.crumbs a[href="/groups/team-g/images"]`).Length() != 1 {
		t.Error("the crumbs do not lead back to the group's images")
	}

	// Edit it.
	res = gina.postForm("/groups/team-g/images/team-image", url.Values{"displayName": {"team-image"}, "type": {"gpu"}, "url": {"python:3.13"},
		"description": {"Our GPU image"}, "global": {"on"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/groups/team-g/images/team-image" {
		t.Fatalf("edit: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if img, _ := env.store.FindImage(t.Context(), "team-image"); img.Type != store.TypeGPU || img.Global || img.Owner != "team-g" {
		t.Errorf("after edit: %+v", img)
	}

	// Others' images are not found in the group's scope, whatever the action.
	for _, path := range []string{"/groups/team-g/images/sys-python", "/groups/team-g/images/h-own/edit"} {
		if _, status := gina.getPage(path); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
	}
	if res := gina.postForm("/groups/team-g/images/sys-python/delete", url.Values{}); res.StatusCode != http.StatusNotFound {
		t.Errorf("deleting a System image in the group's scope: %d", res.StatusCode)
	}
	if _, status := gina.getPage("/groups/team-h/images"); status != http.StatusForbidden {
		t.Errorf("gina on team-h's images: %d", status)
	}
	if _, status := gina.getPage("/admin/images"); status != http.StatusForbidden {
		t.Errorf("gina on the administrators' images: %d", status)
	}

	// Members see it in their selection, marked as not a System image;
	// other groups' members do not.
	var sel listBody[selectionItem]
	env.withToken("alice", store.ScopeRead).json(http.MethodGet, "/api/v1/me/images", nil, &sel)
	found := false
	for _, it := range sel.Items {
		if it.Name == "team-image" {
			found = !it.System && it.Owner == "team-g"
		}
	}
	if !found {
		t.Errorf("alice's selection: %+v", sel.Items)
	}
	env.withToken("hank", store.ScopeRead).json(http.MethodGet, "/api/v1/me/images", nil, &sel)
	for _, it := range sel.Items {
		if it.Name == "team-image" {
			t.Error("hank (team-h) sees team-g's image")
		}
	}

	// Delete it from the table.
	gina.getPage("/groups/team-g/images")
	if res := gina.htmx(http.MethodDelete, "/groups/team-g/images/team-image", nil); res.StatusCode != http.StatusOK {
		t.Errorf("delete: %d", res.StatusCode)
	}
	if _, err := env.store.FindImage(t.Context(), "team-image"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("still stored: %v", err)
	}
}

func TestGroupAdminBuildsImage(t *testing.T) {
	env := newGroupEnv(t)
	gina := env.signIn("gina")
	doc, _ := gina.getPage("/groups/team-g/images/new?kind=build")
	if doc.Find(`input[name=kind][value=build]`).Length() != 1 {
		t.Fatal("no build form in the group's scope")
	}
	res := gina.postForm("/groups/team-g/images", url.Values{"kind": {"build"}, "displayName": {"team-build"}, "type": {"cpu"},
		"baseImage": {"docker.io/library/debian:bookworm"}, "pip": {"numpy>=1.2\nnot a package!"}})
	if doc := gina.readPage(res); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#pip-error").Text(), "line 2") {
		t.Fatalf("bad recipe: %d %q", res.StatusCode, doc.Find("#pip-error").Text())
	}
	res = gina.postForm("/groups/team-g/images", url.Values{"kind": {"build"}, "displayName": {"team-build"}, "type": {"cpu"},
		"baseImage": {"docker.io/library/debian:bookworm"}, "pip": {"numpy>=1.2"}})
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/groups/team-g/builds/") {
		t.Fatalf("build: %d to %q", res.StatusCode, loc)
	}
	img, err := env.store.FindImage(t.Context(), "team-build")
	if err != nil || img.Owner != "team-g" || img.Recipe == nil || img.Ready {
		t.Fatalf("stored: %+v %v", img, err)
	}
	doc, status := gina.getPage(loc)
	if status != http.StatusOK {
		t.Fatalf("build page: %d", status)
	}
	logURL := doc.Find("#build-log").AttrOr("data-log-url", "")
	if res := gina.get(logURL); res.StatusCode != http.StatusOK {
		t.Errorf("gina reading her build's log at %s: %d", logURL, res.StatusCode)
	}
	if res := env.signIn("hank").get(logURL); res.StatusCode != http.StatusForbidden {
		t.Errorf("hank reading team-g's build log: %d", res.StatusCode)
	}
	if doc.Find(`form[action="`+loc+`/cancel"]`).Length() != 1 {
		t.Error("the Cancel form is not scoped")
	}
	res = gina.postForm(loc+"/cancel", url.Values{})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != loc {
		t.Fatalf("cancel: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	// Rebuild from an edited recipe.
	doc, _ = gina.getPage("/groups/team-g/images/team-build/rebuild")
	if doc.Find(`form#rebuild-form[action="/groups/team-g/images/team-build/rebuild"]`).Length() != 1 {
		t.Error("the rebuild form is not scoped")
	}
	res = gina.postForm("/groups/team-g/images/team-build/rebuild", url.Values{"baseImage": {"docker.io/library/debian:bookworm"}, "pip": {"numpy>=1.3"}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/groups/team-g/builds/") {
		t.Fatalf("rebuild: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if bs, _ := env.store.ListBuilds(t.Context(), "team-build"); len(bs) != 2 || bs[0].Recipe.Pip != "numpy>=1.3" {
		t.Errorf("builds: %+v", bs)
	}
}

func TestGroupImagesAPI(t *testing.T) {
	env := newGroupEnv(t)
	gina := env.withToken("gina", store.ScopeAdmin)
	var created imageBody
	res := gina.json(http.MethodPost, "/api/v1/groups/team-g/images", map[string]any{
		"displayName": "api-build", "type": "cpu", "build": map[string]string{"baseImage": "debian:bookworm", "pip": "numpy"},
	}, &created)
	if res.StatusCode != http.StatusCreated || created.Owner != "team-g" || created.LatestBuild == nil {
		t.Fatalf("POST: %d %+v", res.StatusCode, created)
	}
	var e errorBody
	for name, body := range map[string]map[string]any{
		"global": {"displayName": "x", "type": "cpu", "url": "busybox", "global": true},
		"groups": {"displayName": "x", "type": "cpu", "url": "busybox", "groups": []string{"team-h"}},
	} {
		if res := gina.json(http.MethodPost, "/api/v1/groups/team-g/images", body, &e); res.StatusCode != http.StatusUnprocessableEntity || e.Fields[name] == "" {
			t.Errorf("POST with %s: %d %+v", name, res.StatusCode, e)
		}
	}
	var list listBody[store.Image]
	if res := gina.json(http.MethodGet, "/api/v1/groups/team-g/images", nil, &list); res.StatusCode != http.StatusOK || list.Total != 1 || list.Items[0].Name != "api-build" {
		t.Errorf("GET: %d %+v", res.StatusCode, list)
	}
	if res := gina.json(http.MethodPatch, "/api/v1/images/api-build", map[string]any{"groups": []string{"team-h"}}, &e); res.StatusCode != http.StatusUnprocessableEntity || e.Fields["groups"] == "" {
		t.Errorf("PATCH groups: %d %+v", res.StatusCode, e)
	}
	if res := gina.json(http.MethodPost, "/api/v1/images/api-build/rebuild", nil, &e); res.StatusCode != http.StatusConflict {
		t.Errorf("rebuild while a build waits: %d %+v", res.StatusCode, e)
	}
	var b store.Build
	if res := gina.json(http.MethodPost, "/api/v1/builds/"+strconv.FormatInt(created.LatestBuild.ID, 10)+"/cancel", nil, &b); res.StatusCode != http.StatusOK || b.Status != store.BuildCancelled {
		t.Errorf("cancel: %d %+v", res.StatusCode, b)
	}
	if res := gina.json(http.MethodPost, "/api/v1/images/api-build/rebuild", nil, &b); res.StatusCode != http.StatusAccepted {
		t.Errorf("rebuild: %d", res.StatusCode)
	}
	if res := gina.json(http.MethodDelete, "/api/v1/images/h-own", nil, &e); res.StatusCode != http.StatusForbidden {
		t.Errorf("gina deleting team-h's image: %d", res.StatusCode)
	}
	if res := gina.json(http.MethodPatch, "/api/v1/images/sys-python", map[string]string{"description": "x"}, &e); res.StatusCode != http.StatusForbidden {
		t.Errorf("gina changing a System image: %d", res.StatusCode)
	}
	if res := gina.json(http.MethodGet, "/api/v1/images", nil, &e); res.StatusCode != http.StatusForbidden {
		t.Errorf("gina listing every image: %d", res.StatusCode)
	}
	// An administrator filters by owner.
	admin := env.withToken("admin", store.ScopeRead)
	for owner, want := range map[string]string{"system": "sys-python", "team-h": "h-own", "team-g": "api-build"} {
		admin.json(http.MethodGet, "/api/v1/images?owner="+owner, nil, &list)
		if list.Total != 1 || list.Items[0].Name != want {
			t.Errorf("?owner=%s: %+v", owner, list.Items)
		}
	}
	// Not while its build waits: cancel it first.
	if res := gina.json(http.MethodDelete, "/api/v1/images/api-build", nil, &e); res.StatusCode != http.StatusConflict || !strings.Contains(e.Error, "cancel the build first") {
		t.Errorf("DELETE own while its build waits: %d %q", res.StatusCode, e.Error)
	}
	if res := gina.json(http.MethodPost, "/api/v1/builds/"+strconv.FormatInt(b.ID, 10)+"/cancel", nil, nil); res.StatusCode != http.StatusOK {
		t.Errorf("cancel: %d", res.StatusCode)
	}
	if res := gina.json(http.MethodDelete, "/api/v1/images/api-build", nil, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE own: %d", res.StatusCode)
	}
}

func TestAdminImagesOwnerFilter(t *testing.T) {
	env := newGroupEnv(t)
	admin := env.signIn("admin")
	ids := func(path string) []string {
		doc, _ := admin.getPage(path)
		var out []string
		doc.Find("#images-table tbody tr[id]").Each(func(_ int, tr *goquery.Selection) { out = append(out, tr.AttrOr("id", "")) })
		return out
	}
	if got := strings.Join(ids("/admin/images"), " "); got != "image-h-own image-sys-python" {
		t.Errorf("all: %s", got)
	}
	if got := strings.Join(ids("/admin/images?owner=system"), " "); got != "image-sys-python" {
		t.Errorf("system: %s", got)
	}
	if got := strings.Join(ids("/admin/images?owner=team-h"), " "); got != "image-h-own" {
		t.Errorf("team-h: %s", got)
	}
	doc, _ := admin.getPage("/admin/images?owner=team-h")
	if doc.Find(`.owner-filter [aria-current][data-owner=team-h]`).Length() != 1 || doc.Find(`.owner-filter a[href="/admin/images?owner=system"]`).Length() != 1 {
		t.Error("the owner filter does not show the choice")
	}
	if got := strings.TrimSpace(doc.Find("#image-h-own td.access").Text()); got != "Group team-h" {
		t.Errorf("a group image's access: %q", got)
	}
	if v := doc.Find("#image-search").AttrOr("data-hx-vals", ""); !strings.Contains(v, "team-h") {
		t.Errorf("the search forgets the filter: data-hx-vals %q", v)
	}
	// An administrator edits a group's image without being offered to share it.
	doc, _ = admin.getPage("/admin/images/h-own/edit")
	if doc.Find("#global").Length() != 0 || !strings.Contains(doc.Find("#group-access").Text(), "team-h") {
		t.Error("the administrator's edit form of a group image offers global access")
	}
	// And may work in a group's scope too.
	if _, status := admin.getPage("/groups/team-h/images/h-own"); status != http.StatusOK {
		t.Errorf("admin in team-h's scope: %d", status)
	}
}

// TestGroupAdminCannotChooseSecrets: a pull secret holds an administrator's
// registry credentials, so a group admin may not name one — in the API, the
// forms or Check — while an administrator may, and a group admin may keep
// the one an administrator set.
func TestGroupAdminCannotChooseSecrets(t *testing.T) {
	env := newGroupEnv(t)
	env.mustCreateSecret("admins-registry")
	gina := env.withToken("gina", store.ScopeAdmin)
	before := env.imageCount()
	var body struct {
		Fields map[string]string `json:"fields"`
	}
	res := gina.json("POST", "/api/v1/groups/team-g/images", map[string]any{
		"displayName": "g-private", "type": "cpu", "build": map[string]string{"baseImage": "registry.example.com/private/base", "pullSecret": "admins-registry"},
	}, &body)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body.Fields["buildPullSecret"], "Only an administrator") {
		t.Errorf("group admin naming a secret in a recipe: %d %v", res.StatusCode, body.Fields)
	}
	res = gina.json("POST", "/api/v1/groups/team-g/images", map[string]any{
		"displayName": "g-existing", "type": "cpu", "url": "registry.example.com/private/x", "pullSecret": "admins-registry",
	}, &body)
	if res.StatusCode != http.StatusUnprocessableEntity || body.Fields["pullSecret"] == "" {
		t.Errorf("group admin naming an image's pull secret: %d %v", res.StatusCode, body.Fields)
	}
	if n := env.imageCount(); n != before {
		t.Errorf("%d images stored after refused requests", n-before)
	}
	form := env.signIn("gina").postForm("/groups/team-g/images", url.Values{
		"kind": {"build"}, "displayName": {"g-form"}, "type": {"cpu"}, "baseImage": {"debian"},
		"usePullSecret": {"on"}, "pullSecret": {"admins-registry"},
	})
	if form.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("the build form with a secret chosen by a group admin: %d", form.StatusCode)
	}

	// An administrator sets the secret on a group image; its group admin keeps it.
	admin := env.withToken("admin", store.ScopeAdmin)
	if res := admin.json("POST", "/api/v1/groups/team-g/images", map[string]any{
		"displayName": "g-by-admin", "type": "cpu", "url": "registry.example.com/private/y", "pullSecret": "admins-registry",
	}, nil); res.StatusCode != http.StatusCreated {
		t.Fatalf("admin: %d", res.StatusCode)
	}
	if res := gina.json("PATCH", "/api/v1/images/g-by-admin", map[string]any{"description": "kept", "pullSecret": "admins-registry"}, nil); res.StatusCode != http.StatusOK {
		t.Errorf("group admin keeping the admin's secret: %d", res.StatusCode)
	}
}
