package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"imagehub/store"
)

func TestUsersPages(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	if err := env.store.SetMember(t.Context(), "team-a", "alice", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	admin := env.signIn("admin")
	doc, status := admin.getPage("/admin/users")
	if status != http.StatusOK {
		t.Fatalf("GET /admin/users: %d", status)
	}
	if got := rowText(doc.Find("#user-alice")); !strings.Contains(got, "alice User team-a (group admin)") {
		t.Errorf("alice's row = %q", got)
	}
	if got := rowText(doc.Find("#user-admin")); !strings.Contains(got, "admin Administrator") {
		t.Errorf("admin's row = %q", got)
	}
	if doc.Find(`#user-admin button[title=Delete]`).Length() != 0 || doc.Find(`#user-alice button[title=Delete]`).Length() != 1 {
		t.Error("the own row must have no delete button, the others one")
	}
	if doc.Find(`nav.mainnav a.active[href="/admin/users"]`).Length() != 1 {
		t.Error("the Users navigation item is not active")
	}

	// Bad input comes back at the fields, the username kept, never the password.
	res := admin.postForm("/admin/users", url.Values{"username": {"Bob Smith"}, "password": {"short"}, "admin": {"true"}})
	doc = admin.readPage(res)
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad user: %d", res.StatusCode)
	}
	if doc.Find("#username-error").Text() == "" || !strings.Contains(doc.Find("#password-error").Text(), "8 characters") {
		t.Errorf("errors: username %q password %q", doc.Find("#username-error").Text(), doc.Find("#password-error").Text())
	}
	if v, _ := doc.Find("#username").Attr("value"); v != "Bob Smith" {
		t.Errorf("username kept as %q", v)
	}
	if _, checked := doc.Find("#admin").Attr("checked"); !checked {
		t.Error("the Administrator box was not kept")
	}
	if v, _ := doc.Find("#password").Attr("value"); v != "" {
		t.Error("the password was sent back")
	}
	res = admin.postForm("/admin/users", url.Values{"username": {"alice"}, "password": {"password-1"}})
	if doc := admin.readPage(res); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#username-error").Text(), "taken") {
		t.Errorf("duplicate: %d %q", res.StatusCode, doc.Find("#username-error").Text())
	}

	// Create bob, sign him in, reset his password: his session ends.
	if res := admin.postForm("/admin/users", url.Values{"username": {"bob"}, "password": {testAdminPassword}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create bob: %d", res.StatusCode)
	}
	bob := env.signIn("bob")
	res = admin.postForm("/admin/users/bob/password", url.Values{"password": {"short"}})
	if doc := admin.readPage(res); res.StatusCode != http.StatusUnprocessableEntity || doc.Find("#password-error").Text() == "" {
		t.Errorf("short password: %d", res.StatusCode)
	}
	if _, status := bob.getPage("/images"); status != http.StatusOK {
		t.Fatalf("a refused password change ended bob's session: %d", status)
	}
	if res := admin.postForm("/admin/users/bob/password", url.Values{"password": {"a-new-password"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset: %d", res.StatusCode)
	}
	if res := bob.get("/images"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("bob's session after a reset: %d, want 303 to /login", res.StatusCode)
	}
	if _, err := env.store.Authenticate(t.Context(), "bob", "a-new-password"); err != nil {
		t.Errorf("new password: %v", err)
	}

	// Make and unmake an administrator.
	if res := admin.postForm("/admin/users/bob/admin", url.Values{"admin": {"true"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("make admin: %d", res.StatusCode)
	}
	if u, _ := env.store.FindUser(t.Context(), "bob"); !u.Admin {
		t.Error("bob is not an administrator")
	}
	doc, _ = admin.getPage("/admin/users/bob")
	if got := doc.Find("#save-admin").Text(); !strings.Contains(got, "Remove administrator rights") {
		t.Errorf("button = %q", got)
	}
	if res := admin.postForm("/admin/users/bob/admin", url.Values{"admin": {"false"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("unmake admin: %d", res.StatusCode)
	}
	if u, _ := env.store.FindUser(t.Context(), "bob"); u.Admin {
		t.Error("bob is still an administrator")
	}

	// Delete bob.
	if res := admin.postForm("/admin/users/bob/delete", url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	if _, err := env.store.FindUser(t.Context(), "bob"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("bob still exists: %v", err)
	}
	if _, status := admin.getPage("/admin/users/bob"); status != http.StatusNotFound {
		t.Errorf("page of a deleted user: %d", status)
	}
}

func TestAdminCannotRemoveThemselves(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	doc, _ := admin.getPage("/admin/users/admin")
	if _, disabled := doc.Find("#save-admin").Attr("disabled"); !disabled {
		t.Error("the own Remove administrator rights button is not disabled")
	}
	if !strings.Contains(doc.Find("#delete-self").Text(), "cannot delete your own account") || doc.Find("#delete-user").Length() != 0 {
		t.Error("the own page offers deleting oneself")
	}
	res := admin.postForm("/admin/users/admin/admin", url.Values{"admin": {"false"}})
	doc = admin.readPage(res)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#admin-error").Text(), "cannot remove your own administrator rights") {
		t.Errorf("un-admin self: %d %q", res.StatusCode, doc.Find("#admin-error").Text())
	}
	res = admin.postForm("/admin/users/admin/delete", url.Values{})
	doc = admin.readPage(res)
	if res.StatusCode != http.StatusConflict || !strings.Contains(doc.Find(".error-message").Text(), "cannot delete your own account") {
		t.Errorf("delete self: %d %q", res.StatusCode, doc.Find(".error-message").Text())
	}
	res = admin.htmx(http.MethodDelete, "/admin/users/admin", nil)
	if body := readAll(t, res.Body); res.StatusCode != http.StatusConflict || !strings.Contains(body, "cannot delete your own account") {
		t.Errorf("htmx delete self: %d %q", res.StatusCode, body)
	}
	api := env.withToken("admin", store.ScopeAdmin)
	var e errorBody
	if res := api.json(http.MethodPatch, "/api/v1/users/admin", map[string]any{"admin": false, "password": "changed-password"}, &e); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(e.Fields["admin"], "own administrator") {
		t.Errorf("API un-admin self: %d %+v", res.StatusCode, e)
	}
	if _, err := env.store.Authenticate(t.Context(), "admin", testAdminPassword); err != nil {
		t.Error("a refused PATCH changed the password")
	}
	if res := api.json(http.MethodDelete, "/api/v1/users/admin", nil, &e); res.StatusCode != http.StatusConflict || !strings.Contains(e.Error, "own account") {
		t.Errorf("API delete self: %d %+v", res.StatusCode, e)
	}
	if u, err := env.store.FindUser(t.Context(), "admin"); err != nil || !u.Admin {
		t.Errorf("admin after the refusals: %+v %v", u, err)
	}
}

func TestOwnPasswordResetKeepsOwnSession(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	other := env.signIn("admin")
	if res := admin.postForm("/admin/users/admin/password", url.Values{"password": {"brand-new-password"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset own password: %d", res.StatusCode)
	}
	if _, status := admin.getPage("/admin/users"); status != http.StatusOK {
		t.Errorf("the session that changed the password ended: %d", status)
	}
	if res := other.get("/admin/users"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("another session of the same user survived: %d", res.StatusCode)
	}
}

func TestUsersAPI(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	api := env.withToken("admin", store.ScopeAdmin)
	var u store.User
	res := api.json(http.MethodPost, "/api/v1/users", map[string]any{"username": "carol", "password": "password-1", "admin": true}, &u)
	if res.StatusCode != http.StatusCreated || u.Username != "carol" || !u.Admin || u.Password != "" {
		t.Fatalf("POST: %d %+v", res.StatusCode, u)
	}
	var e errorBody
	if res := api.json(http.MethodPost, "/api/v1/users", map[string]any{"username": "carol", "password": "x", "isAdmin": true}, &e); res.StatusCode != http.StatusUnprocessableEntity || e.Fields["isAdmin"] != "Unknown field." {
		t.Errorf("unknown field: %d %+v", res.StatusCode, e)
	}
	if res := api.json(http.MethodPost, "/api/v1/users", map[string]any{"username": "carol", "password": "password-1"}, &e); res.StatusCode != http.StatusUnprocessableEntity || e.Fields["username"] == "" {
		t.Errorf("duplicate: %d %+v", res.StatusCode, e)
	}
	var list listBody[map[string]any]
	if res := api.json(http.MethodGet, "/api/v1/users", nil, &list); res.StatusCode != http.StatusOK || list.Total != 3 {
		t.Errorf("GET: %d total %d", res.StatusCode, list.Total)
	}
	for _, it := range list.Items {
		if _, has := it["password"]; has {
			t.Errorf("a listed user has a password field: %v", it)
		}
	}
	res = api.json(http.MethodPatch, "/api/v1/users/carol", map[string]any{"admin": false, "password": "password-2"}, &u)
	if res.StatusCode != http.StatusOK || u.Admin {
		t.Errorf("PATCH: %d %+v", res.StatusCode, u)
	}
	if _, err := env.store.Authenticate(t.Context(), "carol", "password-2"); err != nil {
		t.Errorf("PATCH password: %v", err)
	}
	if res := api.json(http.MethodPatch, "/api/v1/users/carol", map[string]any{"password": "short"}, &e); res.StatusCode != http.StatusUnprocessableEntity || e.Fields["password"] == "" {
		t.Errorf("PATCH short password: %d %+v", res.StatusCode, e)
	}
	if res := api.json(http.MethodPatch, "/api/v1/users/nobody", map[string]any{"admin": true}, &e); res.StatusCode != http.StatusNotFound {
		t.Errorf("PATCH unknown: %d", res.StatusCode)
	}

	// Members: PUT sets the role, DELETE removes.
	var g store.Group
	if res := api.json(http.MethodPut, "/api/v1/groups/team-a/members/carol", map[string]string{"role": "admin"}, &g); res.StatusCode != http.StatusOK ||
		len(g.Members) != 1 || g.Members[0] != (store.Member{Username: "carol", Role: store.RoleAdmin}) {
		t.Errorf("PUT member: %d %+v", res.StatusCode, g)
	}
	if res := api.json(http.MethodPut, "/api/v1/groups/team-a/members/carol", map[string]string{"role": "member"}, &g); res.StatusCode != http.StatusOK || g.Members[0].Role != store.RoleMember {
		t.Errorf("PUT role change: %d %+v", res.StatusCode, g)
	}
	if res := api.json(http.MethodPut, "/api/v1/groups/team-a/members/carol", map[string]string{"role": "owner"}, &e); res.StatusCode != http.StatusUnprocessableEntity || e.Fields["role"] == "" {
		t.Errorf("PUT bad role: %d %+v", res.StatusCode, e)
	}
	if res := api.json(http.MethodPut, "/api/v1/groups/team-a/members/nobody", map[string]string{"role": "member"}, &e); res.StatusCode != http.StatusNotFound || !strings.Contains(e.Error, "nobody") {
		t.Errorf("PUT unknown user: %d %+v", res.StatusCode, e)
	}
	if res := api.json(http.MethodPut, "/api/v1/groups/nope/members/carol", map[string]string{"role": "member"}, &e); res.StatusCode != http.StatusNotFound || !strings.Contains(e.Error, "nope") {
		t.Errorf("PUT unknown group: %d %+v", res.StatusCode, e)
	}
	var got store.User
	api.json(http.MethodGet, "/api/v1/users/carol", nil, &got)
	if len(got.Groups) != 1 || got.Groups[0].Group != "team-a" {
		t.Errorf("carol's groups: %+v", got.Groups)
	}
	if res := api.json(http.MethodDelete, "/api/v1/groups/team-a/members/carol", nil, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE member: %d", res.StatusCode)
	}
	if res := api.json(http.MethodDelete, "/api/v1/groups/team-a/members/carol", nil, &e); res.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE member twice: %d", res.StatusCode)
	}
	if res := api.json(http.MethodDelete, "/api/v1/users/carol", nil, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE user: %d", res.StatusCode)
	}
	if res := api.json(http.MethodGet, "/api/v1/users/carol", nil, &e); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET deleted user: %d", res.StatusCode)
	}
}

func TestGroupMembersPage(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	ctx := context.Background()
	if err := env.store.CreateUser(ctx, &store.User{Username: "bob", Password: testAdminPassword}); err != nil {
		t.Fatal(err)
	}
	admin := env.signIn("admin")
	doc, _ := admin.getPage("/admin/groups/team-a/edit")
	var offered []string
	doc.Find(`#member-form select[name=username] option`).Each(func(_ int, o *goquery.Selection) { offered = append(offered, o.AttrOr("value", "")) })
	if strings.Join(offered, ",") != ",admin,alice,bob" {
		t.Errorf("users offered = %v", offered)
	}
	// Errors at the fields.
	res := admin.postForm("/admin/groups/team-a/members", url.Values{"username": {""}, "role": {"owner"}})
	doc = admin.readPage(res)
	if res.StatusCode != http.StatusUnprocessableEntity || doc.Find("#member-form #username-error").Text() == "" || doc.Find("#member-form #role-error").Text() == "" {
		t.Errorf("bad member: %d %q %q", res.StatusCode, doc.Find("#username-error").Text(), doc.Find("#role-error").Text())
	}
	res = admin.postForm("/admin/groups/team-a/members", url.Values{"username": {"ghost"}, "role": {"member"}})
	doc = admin.readPage(res)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#member-form #username-error").Text(), "ghost") {
		t.Errorf("unknown user: %d %q", res.StatusCode, doc.Find("#username-error").Text())
	}
	// Add alice as a group admin, bob as a member.
	for user, role := range map[string]string{"alice": "admin", "bob": "member"} {
		if res := admin.postForm("/admin/groups/team-a/members", url.Values{"username": {user}, "role": {role}}); res.StatusCode != http.StatusSeeOther ||
			res.Header.Get("Location") != "/admin/groups/team-a/edit" {
			t.Fatalf("add %s: %d %q", user, res.StatusCode, res.Header.Get("Location"))
		}
	}
	doc, _ = admin.getPage("/admin/groups/team-a/edit")
	if got := doc.Find(`#member-alice select[name=role] option[selected]`).AttrOr("value", ""); got != "admin" {
		t.Errorf("alice's role shown as %q", got)
	}
	if !strings.Contains(doc.Find(".flash").Text(), "alice is now a group admin of team-a") && !strings.Contains(doc.Find(".flash").Text(), "bob is now a member of team-a") {
		t.Errorf("notice: %q", doc.Find(".flash").Text())
	}
	// Change alice's role, then remove bob with htmx and alice without script.
	if res := admin.postForm("/admin/groups/team-a/members", url.Values{"username": {"alice"}, "role": {"member"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change role: %d", res.StatusCode)
	}
	if g, _ := env.store.FindGroup(ctx, "team-a"); len(g.Members) != 2 || g.Members[0] != (store.Member{Username: "alice", Role: store.RoleMember}) {
		t.Errorf("members after the role change: %+v", g.Members)
	}
	if res := admin.htmx(http.MethodDelete, "/admin/groups/team-a/members/bob", nil); res.StatusCode != http.StatusOK {
		t.Errorf("htmx remove: %d", res.StatusCode)
	}
	if res := admin.postForm("/admin/groups/team-a/members/alice/delete", url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("remove: %d", res.StatusCode)
	}
	if g, _ := env.store.FindGroup(ctx, "team-a"); len(g.Members) != 0 {
		t.Errorf("members at the end: %+v", g.Members)
	}
	if _, status := admin.getPage("/admin/groups/nope/edit"); status != http.StatusNotFound {
		t.Errorf("unknown group page: %d", status)
	}
	if res := admin.postForm("/admin/groups/nope/members", url.Values{"username": {"bob"}, "role": {"member"}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("add to an unknown group: %d", res.StatusCode)
	}
}
