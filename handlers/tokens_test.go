package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"imagehub/store"
)

func TestTokensPage(t *testing.T) {
	env := newTestEnv(t)
	alice := env.signIn("alice")
	doc, status := alice.getPage("/account/tokens")
	if status != http.StatusOK || !strings.Contains(doc.Find("tr.empty").Text(), "No API tokens") {
		t.Fatalf("empty tokens page: %d", status)
	}
	for field, form := range map[string]url.Values{
		"scope": {"name": {"ci"}, "scope": {"root"}},
		"name":  {"name": {"bad\x01name"}, "scope": {"read"}},
	} {
		res := alice.postForm("/account/tokens", form)
		doc := alice.readPage(res)
		if res.StatusCode != http.StatusUnprocessableEntity || doc.Find("#"+field+"-error").Text() == "" {
			t.Errorf("bad %s: %d", field, res.StatusCode)
		}
		if v, _ := doc.Find("#name").Attr("value"); v != form.Get("name") {
			t.Errorf("bad %s: name kept as %q", field, v)
		}
	}
	res := alice.postForm("/account/tokens", url.Values{"name": {"launcher"}, "scope": {"read"}})
	doc = alice.readPage(res)
	value := strings.TrimSpace(doc.Find("#new-token").Text())
	if res.StatusCode != http.StatusCreated || !strings.HasPrefix(value, "ih_") {
		t.Fatalf("create: %d value %q", res.StatusCode, value)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the page showing a token may be cached: %q", res.Header.Get("Cache-Control"))
	}
	// The value works, read-only, and is never shown again.
	api := env.anonymous()
	api.bearer = value
	if res := api.json(http.MethodGet, "/api/v1/me/images", nil, nil); res.StatusCode != http.StatusOK {
		t.Errorf("the new token: %d", res.StatusCode)
	}
	if res := api.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "x", "scope": "admin"}, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("a read-only token made a token: %d", res.StatusCode)
	}
	res = alice.get("/account/tokens")
	body := readAll(t, res.Body)
	if strings.Contains(body, value) {
		t.Error("the token value is shown again")
	}
	doc = parseHTML(t, body)
	toks, _ := env.store.ListTokens(t.Context(), "alice")
	if len(toks) != 1 {
		t.Fatalf("alice has %d tokens", len(toks))
	}
	id := strconv.FormatInt(toks[0].ID, 10)
	if got := rowText(doc.Find("#token-" + id)); !strings.Contains(got, "launcher Read only") {
		t.Errorf("token row = %q", got)
	}

	// Another user can neither see nor revoke it; an administrator can.
	env.store.CreateUser(t.Context(), &store.User{Username: "bob", Password: testAdminPassword})
	bob := env.signIn("bob")
	if doc, _ := bob.getPage("/account/tokens"); doc.Find("#token-"+id).Length() != 0 {
		t.Error("bob sees alice's token")
	}
	if res := bob.postForm("/account/tokens/"+id+"/delete", url.Values{}); res.StatusCode != http.StatusNotFound {
		t.Errorf("bob revokes alice's token: %d, want 404", res.StatusCode)
	}
	admin := env.signIn("admin")
	doc, _ = admin.getPage("/account/tokens")
	if got := rowText(doc.Find("#token-" + id)); !strings.HasPrefix(got, "alice launcher") {
		t.Errorf("the administrator's view of alice's token: %q", got)
	}
	if res := alice.htmx(http.MethodDelete, "/account/tokens/"+id, nil); res.StatusCode != http.StatusOK {
		t.Errorf("revoke: %d", res.StatusCode)
	}
	if res := api.json(http.MethodGet, "/api/v1/me/images", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d, want 401", res.StatusCode)
	}
	if res := alice.postForm("/account/tokens/x/delete", url.Values{}); res.StatusCode != http.StatusNotFound {
		t.Errorf("revoke a malformed id: %d", res.StatusCode)
	}
}

func TestTokensAPI(t *testing.T) {
	env := newTestEnv(t)
	alice := env.withToken("alice", store.ScopeAdmin)
	var created struct {
		ID    int64            `json:"id"`
		Name  string           `json:"name"`
		Scope store.TokenScope `json:"scope"`
		User  string           `json:"username"`
		Token string           `json:"token"`
	}
	res := alice.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "ci", "scope": "read"}, &created)
	if res.StatusCode != http.StatusCreated || created.ID == 0 || created.User != "alice" || created.Scope != store.ScopeRead || !strings.HasPrefix(created.Token, "ih_") {
		t.Fatalf("POST: %d %+v", res.StatusCode, created)
	}
	var e errorBody
	if res := alice.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "ci", "scope": "write"}, &e); res.StatusCode != http.StatusUnprocessableEntity || e.Fields["scope"] == "" {
		t.Errorf("bad scope: %d %+v", res.StatusCode, e)
	}
	read := env.anonymous()
	read.bearer = created.Token
	var list listBody[map[string]any]
	if res := read.json(http.MethodGet, "/api/v1/tokens", nil, &list); res.StatusCode != http.StatusOK || list.Total != 2 {
		t.Errorf("GET with the read token: %d total %d", res.StatusCode, list.Total)
	}
	for _, it := range list.Items {
		if _, has := it["token"]; has {
			t.Error("a listed token carries its value")
		}
	}
	// A read-only token may only read, whatever the route.
	for _, r := range []struct{ method, path string }{
		{http.MethodDelete, "/api/v1/tokens/" + strconv.FormatInt(created.ID, 10)},
		{http.MethodPost, "/api/v1/tokens"},
	} {
		if res := read.json(r.method, r.path, map[string]string{}, nil); res.StatusCode != http.StatusForbidden {
			t.Errorf("read token %s %s: %d, want 403", r.method, r.path, res.StatusCode)
		}
	}
	admin := env.withToken("admin", store.ScopeAdmin)
	if res := admin.json(http.MethodGet, "/api/v1/tokens?user=alice", nil, &list); res.StatusCode != http.StatusOK || list.Total != 2 {
		t.Errorf("admin ?user=alice: %d total %d", res.StatusCode, list.Total)
	}
	if admin.json(http.MethodGet, "/api/v1/tokens", nil, &list); list.Total != 3 {
		t.Errorf("admin sees %d tokens, want 3", list.Total)
	}
	if res := alice.json(http.MethodDelete, "/api/v1/tokens/"+strconv.FormatInt(created.ID, 10), nil, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: %d", res.StatusCode)
	}
	if res := read.json(http.MethodGet, "/api/v1/tokens", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", res.StatusCode)
	}
	if res := alice.json(http.MethodDelete, "/api/v1/tokens/"+strconv.FormatInt(created.ID, 10), nil, &e); res.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE twice: %d", res.StatusCode)
	}
}
