package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"imagehub/store"
)

// TestReservedGroupNameRefused refuses "system" as a group's name on the
// add form, the rename form and the API, each with the reason at the field.
func TestReservedGroupNameRefused(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	res := admin.postForm("/admin/groups", url.Values{"name": {"system"}})
	doc := admin.readPage(res)
	if got := doc.Find("#name-error").Text(); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(got, "reserved") {
		t.Errorf("add system: %d %q, want 422 with the reason at the name", res.StatusCode, got)
	}
	env.mustCreateGroup("team")
	res = admin.postForm("/admin/groups/team", url.Values{"name": {"system"}})
	doc = admin.readPage(res)
	if got := doc.Find("#name-error").Text(); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(got, "reserved") {
		t.Errorf("rename to system: %d %q, want 422 with the reason at the name", res.StatusCode, got)
	}
	var body struct {
		Fields map[string]string `json:"fields"`
	}
	api := env.withToken("admin", store.ScopeAdmin)
	res = api.json(http.MethodPost, "/api/v1/groups", map[string]string{"name": "system"}, &body)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body.Fields["name"], "reserved") {
		t.Errorf("API: %d %v, want 422 with the reason at name", res.StatusCode, body.Fields)
	}
	if _, err := env.store.FindGroup(t.Context(), "system"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("a group named system exists: %v", err)
	}
}
