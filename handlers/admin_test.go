package handlers

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"imagehub/store"
)

func TestSecretsPage(t *testing.T) {
	var changed atomic.Int32 // the pull secrets' mirror is told of each change
	env := newTestEnv(t, func(c *Config) { c.SecretsChanged = func() { changed.Add(1) } })
	admin := env.signIn("admin")
	doc, _ := admin.getPage("/admin/secrets")
	if doc.Find(`form#secret-form input[name=password][type=password]`).Length() != 1 {
		t.Error("the password field is not a password input")
	}
	res := admin.postForm("/admin/secrets", url.Values{
		"name": {"registry-a"}, "registryHost": {"registry.example.com"}, "username": {"robot"}, "password": {"s3cret-pass"},
	})
	if res.StatusCode != http.StatusSeeOther || changed.Load() != 1 {
		t.Fatalf("add secret: %d, %d changes told", res.StatusCode, changed.Load())
	}
	res = admin.get("/admin/secrets")
	body := readAll(t, res.Body)
	if strings.Contains(body, "s3cret") {
		t.Fatal("the secrets page shows a password")
	}
	doc = parseHTML(t, body)
	row := rowText(doc.Find("#secret-registry-a"))
	if !strings.Contains(row, "registry-a registry.example.com robot") {
		t.Errorf("secret row = %q", row)
	}
	env.mustCreateImage(&store.Image{DisplayName: "private", Type: store.TypeCPU, URL: "registry.example.com/app:1", PullSecret: "registry-a", Global: true})
	res = admin.htmx(http.MethodDelete, "/admin/secrets/registry-a", nil)
	if body := readAll(t, res.Body); res.StatusCode != http.StatusConflict || !strings.Contains(body, "used by 1 image") {
		t.Errorf("htmx delete of a secret in use: %d %q, want 409 saying so", res.StatusCode, body)
	}
	res = admin.postForm("/admin/secrets/registry-a/delete", url.Values{})
	doc = admin.readPage(res)
	if res.StatusCode != http.StatusConflict || !strings.Contains(doc.Find(".error-message").Text(), "used by 1 image") {
		t.Errorf("form delete of a secret in use: %d %q", res.StatusCode, doc.Find(".error-message").Text())
	}
	env.store.DeleteImage(t.Context(), "private")
	if res := admin.htmx(http.MethodDelete, "/admin/secrets/registry-a", nil); res.StatusCode != http.StatusOK || changed.Load() != 2 {
		t.Errorf("delete: %d, %d changes told (the refused ones are none)", res.StatusCode, changed.Load())
	}
}

func TestGroupsPages(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	if res := admin.postForm("/admin/groups", url.Values{"name": {"team-a"}, "displayName": {"Team A"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add group: %d", res.StatusCode)
	}
	env.mustCreateImage(&store.Image{DisplayName: "python", Type: store.TypeCPU, URL: "docker.io/library/python:3", Groups: []string{"team-a"}})
	doc, _ := admin.getPage("/admin/groups")
	if got := rowText(doc.Find("#group-team-a")); !strings.Contains(got, "team-a Team A 0") {
		t.Errorf("group row = %q", got)
	}
	doc, _ = admin.getPage("/admin/groups/team-a/edit")
	if doc.Find(`form[action="/admin/groups/team-a"] input[name=name][value=team-a]`).Length() != 1 {
		t.Error("the rename form is not filled")
	}
	res := admin.postForm("/admin/groups/team-a", url.Values{"name": {"Team B"}})
	doc = admin.readPage(res)
	if res.StatusCode != http.StatusUnprocessableEntity || doc.Find("#name-error").Text() == "" {
		t.Errorf("bad rename: %d", res.StatusCode)
	}
	if res := admin.postForm("/admin/groups/team-a", url.Values{"name": {"team-b"}, "displayName": {"Team B"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("rename: %d", res.StatusCode)
	}
	img, _ := env.store.FindImage(t.Context(), "python")
	if strings.Join(img.Groups, ",") != "team-b" {
		t.Errorf("the image's grant did not follow the rename: %v", img.Groups)
	}
	if res := admin.htmx(http.MethodDelete, "/admin/groups/team-b", nil); res.StatusCode != http.StatusOK {
		t.Errorf("delete: %d", res.StatusCode)
	}
	if res := admin.postForm("/admin/groups/team-b/delete", url.Values{}); res.StatusCode != http.StatusNotFound {
		t.Errorf("delete again: %d, want 404", res.StatusCode)
	}
}

func TestSelectionPage(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	if err := env.store.SetMember(t.Context(), "team-a", "alice", store.RoleMember); err != nil {
		t.Fatal(err)
	}
	env.mustCreateImage(&store.Image{DisplayName: "python", Type: store.TypeCPU, URL: "docker.io/library/python:3", Global: true,
		Description: `<img src=x onerror=alert(1)>`})
	env.mustCreateImage(&store.Image{DisplayName: "team-own", Type: store.TypeCPU, URL: "docker.io/library/python:3", Owner: "team-a"})
	alice := env.signIn("alice")
	res := alice.get("/images")
	body := readAll(t, res.Body)
	if strings.Contains(body, "<img src=x") {
		t.Error("a description is not escaped")
	}
	doc := parseHTML(t, body)
	if got := doc.Find("#image-python .hint").AttrOr("title", ""); got != "System image" || doc.Find("#image-python .hint").Text() != "i" {
		t.Errorf("python's hint: title %q", got)
	}
	if doc.Find("#image-team-own .hint").Length() != 0 {
		t.Error("a group's own image is marked as a system image")
	}
	if doc.Find(`nav.mainnav a[href="/admin/images"]`).Length() != 0 {
		t.Error("a user sees the admin navigation")
	}
}

func TestErrorPages(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	doc, status := admin.getPage("/no/such/page")
	if status != http.StatusNotFound || !strings.Contains(doc.Find(".error-message").Text(), "not found") {
		t.Errorf("unknown page: %d %q", status, doc.Find(".error-message").Text())
	}
	var e errorBody
	if res := admin.json(http.MethodGet, "/api/v1/nothing", nil, &e); res.StatusCode != http.StatusNotFound || e.Error == "" {
		t.Errorf("unknown API path: %d %+v", res.StatusCode, e)
	}
	if res := admin.json(http.MethodPut, "/api/v1/images", "{}", &e); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT /api/v1/images: %d, want 405", res.StatusCode)
	}
}

// TestInternalErrorsAreHidden closes the database under the server: the
// client gets a generic message, the log gets the real error.
func TestInternalErrorsAreHidden(t *testing.T) {
	env := newTestEnv(t)
	var logs bytes.Buffer
	env.server.log = slog.New(slog.NewTextHandler(&logs, nil))
	api := env.withToken("admin", store.ScopeAdmin)
	admin := env.signIn("admin")
	env.store.Close()
	var e errorBody
	res := api.json(http.MethodGet, "/api/v1/images", nil, &e)
	if res.StatusCode != http.StatusInternalServerError || e.Error != "Internal error." {
		t.Errorf("API: %d %+v, want 500 \"Internal error.\"", res.StatusCode, e)
	}
	res = admin.get("/admin/images")
	body := readAll(t, res.Body)
	if res.StatusCode != http.StatusInternalServerError || strings.Contains(body, "sql") || strings.Contains(body, "goroutine") {
		t.Errorf("page: %d, and the body shows internals: %.300s", res.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "database is closed") {
		t.Errorf("the real error was not logged: %s", logs.String())
	}
}

func TestSecureCookie(t *testing.T) {
	env := newTestEnv(t)
	srv, err := New(Config{
		Store: env.store, HashKey: make([]byte, 64), BlockKey: make([]byte, 16), Secure: true,
		Normalize: testNormalize, Inspect: env.fakeInspect,
	})
	if err != nil {
		t.Fatal(err)
	}
	env.http.Config.Handler = srv.Handler()
	res := env.anonymous().get("/login")
	for _, ck := range res.Cookies() {
		if ck.Name != secureSessionName || !ck.Secure || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("cookie %s (Secure %v, Path %q, Domain %q), want %s, Secure, Path=/, no Domain",
				ck.Name, ck.Secure, ck.Path, ck.Domain, secureSessionName)
		}
	}
	if len(res.Cookies()) == 0 {
		t.Error("no cookie set")
	}
}

func TestNewChecksConfig(t *testing.T) {
	env := newTestEnv(t)
	good := Config{Store: env.store, HashKey: make([]byte, 32), BlockKey: make([]byte, 32), Normalize: testNormalize, Inspect: env.fakeInspect}
	bad := []func(c *Config){
		func(c *Config) { c.Store = nil },
		func(c *Config) { c.HashKey = make([]byte, 10) },
		func(c *Config) { c.BlockKey = make([]byte, 10) },
		func(c *Config) { c.Normalize = nil },
		func(c *Config) { c.Inspect = nil },
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
	for i, f := range bad {
		c := good
		f(&c)
		if _, err := New(c); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}
