package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"imagehub/store"
)

func TestHealthz(t *testing.T) {
	env := newTestEnv(t)
	res := env.anonymous().get("/healthz")
	if body := readAll(t, res.Body); res.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 \"ok\"", res.StatusCode, body)
	}
}

func TestStaticFiles(t *testing.T) {
	env := newTestEnv(t)
	for _, name := range []string{"htmx.min.js", "app.css", "buildlog.js"} {
		res := env.anonymous().get("/static/" + name)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET /static/%s = %d, want 200", name, res.StatusCode)
		}
	}
	if res := env.anonymous().get("/static/../static/static.go"); res.StatusCode == http.StatusOK {
		t.Errorf("a path with .. was served")
	}
}

func TestLoginCookieAndRedirect(t *testing.T) {
	env := newTestEnv(t)
	c := env.anonymous()
	doc, status := c.getPage("/login?next=/admin/secrets")
	if status != http.StatusOK {
		t.Fatalf("GET /login = %d", status)
	}
	for _, name := range []string{"username", "password", "_csrf", "next"} {
		if doc.Find(`form[action="/login"] input[name=`+name+`]`).Length() != 1 {
			t.Errorf("the sign-in form has no field %q", name)
		}
	}
	res := c.postForm("/login", url.Values{"username": {"admin"}, "password": {testAdminPassword}, "next": {"/admin/secrets"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/secrets" {
		t.Fatalf("POST /login = %d to %q, want 303 to /admin/secrets", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == sessionName {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie set")
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.MaxAge != 12*60*60 || cookie.Secure {
		t.Errorf("cookie: HttpOnly=%v SameSite=%v MaxAge=%d Secure=%v, want true Lax 43200 false",
			cookie.HttpOnly, cookie.SameSite, cookie.MaxAge, cookie.Secure)
	}
	if _, status := c.getPage("/admin/secrets"); status != http.StatusOK {
		t.Errorf("GET /admin/secrets after sign-in = %d", status)
	}
}

func TestLoginRefusesOpenRedirect(t *testing.T) {
	env := newTestEnv(t)
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)",
		"/\t/evil.example", "/\r\n/evil.example", "/\x7f/evil.example", "/ /evil.example", "/\u00a0/evil.example", "/a/../\\evil.example"} {
		c := env.anonymous()
		c.getPage("/login")
		res := c.postForm("/login", url.Values{"username": {"admin"}, "password": {testAdminPassword}, "next": {next}})
		if loc := res.Header.Get("Location"); loc != "/admin/images" {
			t.Errorf("next=%q: redirected to %q, want /admin/images", next, loc)
		}
	}
}

// TestSignedInNextStaysOnSite: a signed-in user sent to /login with
// next=/%09/evil.example (a tab, which browsers drop, making //evil.example)
// goes to a page of this site.
func TestSignedInNextStaysOnSite(t *testing.T) {
	env := newTestEnv(t)
	c := env.signIn("admin")
	for _, q := range []string{"/%09/evil.example", "/%0a/evil.example", "%09//evil.example", "/%5c/evil.example"} {
		res := c.get("/login?next=" + q)
		if loc := res.Header.Get("Location"); strings.Contains(loc, "evil") {
			t.Errorf("next=%s: redirected to %q", q, loc)
		}
	}
	for _, next := range []string{"/admin/images?q=py", "/groups/team/images/x%20y", "/"} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q, want it kept", next, got)
		}
	}
}

func TestLoginWrongPassword(t *testing.T) {
	env := newTestEnv(t)
	c := env.anonymous()
	c.getPage("/login")
	res := c.postForm("/login", url.Values{"username": {"admin"}, "password": {"wrong-password"}})
	doc := c.readPage(res)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", res.StatusCode)
	}
	if got := doc.Find("#login-error").Text(); !strings.Contains(got, "Wrong username or password") {
		t.Errorf("error shown: %q", got)
	}
	if v, _ := doc.Find("input[name=username]").Attr("value"); v != "admin" {
		t.Errorf("username kept as %q, want admin", v)
	}
}

func TestLoginNeedsCSRF(t *testing.T) {
	env := newTestEnv(t)
	c := env.anonymous()
	res := c.postForm("/login", url.Values{"username": {"admin"}, "password": {testAdminPassword}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without a CSRF token: %d, want 403", res.StatusCode)
	}
}

func TestCSRFRequiredOnForms(t *testing.T) {
	env := newTestEnv(t)
	c := env.signIn("admin")
	form := url.Values{"name": {"team"}, "_csrf": {"not-the-token"}}
	if res := c.postForm("/admin/groups", form); res.StatusCode != http.StatusForbidden {
		t.Errorf("wrong _csrf: %d, want 403", res.StatusCode)
	}
	// The JSON API with a session cookie needs the header, not a form field.
	tok := c.csrf
	c.csrf = ""
	if res := c.json(http.MethodPost, "/api/v1/groups", map[string]string{"name": "team"}, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("API POST with a cookie and no X-CSRF-Token: %d, want 403", res.StatusCode)
	}
	c.csrf = tok
	if res := c.json(http.MethodPost, "/api/v1/groups", map[string]string{"name": "team"}, nil); res.StatusCode != http.StatusCreated {
		t.Errorf("API POST with the header: %d, want 201", res.StatusCode)
	}
	if res := c.postForm("/admin/groups", url.Values{"name": {"team2"}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("form with the right token: %d, want 303", res.StatusCode)
	}
}

func TestLogout(t *testing.T) {
	env := newTestEnv(t)
	c := env.signIn("admin")
	res := c.postForm("/logout", url.Values{})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("POST /logout = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := c.get("/admin/images"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out /admin/images = %d, want 303 to /login", res.StatusCode)
	}
}

func TestPasswordChangeEndsSessions(t *testing.T) {
	env := newTestEnv(t)
	c := env.signIn("admin")
	if err := env.store.SetPassword(context.Background(), "admin", "another-password"); err != nil {
		t.Fatal(err)
	}
	res := c.get("/admin/images")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("after a password change: %d to %q, want 303 to /login", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestAnonymousRedirectKeepsNext(t *testing.T) {
	env := newTestEnv(t)
	res := env.anonymous().get("/admin/images?q=py")
	want := "/login?next=" + url.QueryEscape("/admin/images?q=py")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
		t.Errorf("got %d to %q, want 303 to %q", res.StatusCode, res.Header.Get("Location"), want)
	}
}

func TestNonAdminIsForbidden(t *testing.T) {
	env := newTestEnv(t)
	c := env.signIn("alice")
	if _, status := c.getPage("/admin/images"); status != http.StatusForbidden {
		t.Errorf("alice GET /admin/images = %d, want 403", status)
	}
	if res := c.json(http.MethodGet, "/api/v1/images", nil, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("alice GET /api/v1/images = %d, want 403", res.StatusCode)
	}
	if _, status := c.getPage("/images"); status != http.StatusOK {
		t.Errorf("alice GET /images = %d, want 200", status)
	}
}

func TestBearerTokens(t *testing.T) {
	env := newTestEnv(t)
	read := env.withToken("admin", store.ScopeRead)
	if res := read.json(http.MethodGet, "/api/v1/images", nil, nil); res.StatusCode != http.StatusOK {
		t.Errorf("read token GET: %d, want 200", res.StatusCode)
	}
	body := map[string]any{"displayName": "py", "type": "cpu", "url": "python:3.12", "global": true}
	if res := read.json(http.MethodPost, "/api/v1/images", body, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("read token POST: %d, want 403", res.StatusCode)
	}
	// A token needs no CSRF header: browsers never send it by themselves.
	full := env.withToken("admin", store.ScopeAdmin)
	if res := full.json(http.MethodPost, "/api/v1/images", body, nil); res.StatusCode != http.StatusCreated {
		t.Errorf("admin token POST: %d, want 201", res.StatusCode)
	}
	bad := env.anonymous()
	bad.bearer = "ih_not-a-token"
	var e errorBody
	if res := bad.json(http.MethodGet, "/api/v1/images", nil, &e); res.StatusCode != http.StatusUnauthorized || e.Error == "" {
		t.Errorf("bad token: %d %+v, want 401 with a message", res.StatusCode, e)
	}
	user := env.withToken("alice", store.ScopeAdmin)
	if res := user.json(http.MethodGet, "/api/v1/images", nil, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("alice's token on an admin route: %d, want 403", res.StatusCode)
	}
}

func TestAnonymousHTMXIsSentToLogin(t *testing.T) {
	env := newTestEnv(t)
	res := env.anonymous().htmx(http.MethodGet, "/admin/images?q=x", nil)
	if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("HX-Redirect"), "/login?next=") {
		t.Errorf("anonymous htmx request: %d HX-Redirect=%q", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
}

func TestStaticFilesAreVersioned(t *testing.T) {
	env := newTestEnv(t)
	c := env.anonymous()
	doc, _ := c.getPage("/login")
	href := doc.Find(`link[rel=stylesheet]`).AttrOr("href", "")
	if !strings.HasPrefix(href, "/static/app.css?v=") {
		t.Fatalf("style sheet linked as %q, want a versioned URL", href)
	}
	if got := c.get(href).Header.Get("Cache-Control"); !strings.Contains(got, "immutable") {
		t.Errorf("versioned file: Cache-Control %q", got)
	}
	if got := c.get("/static/app.css").Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("unversioned file: Cache-Control %q, want no-cache", got)
	}
	if src := doc.Find(`script[src]`).AttrOr("src", ""); !strings.HasPrefix(src, "/static/htmx.min.js?v=") {
		t.Errorf("htmx linked as %q", src)
	}
}
