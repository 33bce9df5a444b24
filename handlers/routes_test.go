package handlers

import (
	"net/http"
	"strings"
	"testing"
)

// fillParams gives every path parameter a value, so that a route of the
// table can be requested.
func fillParams(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		switch {
		case p == "*":
			parts[i] = "app.css"
		case strings.HasPrefix(p, ":"):
			parts[i] = "x"
		}
	}
	return strings.Join(parts, "/")
}

// TestRoutesRefuseAnonymous walks the whole route table without signing in:
// nothing may succeed but the sign-in form, the health check and the static
// files; admin pages send to /login and the API and the metrics answer 401.
func TestRoutesRefuseAnonymous(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateImage(testImage("x"))
	env.mustCreateGroup("x")
	env.mustCreateSecret("x")
	open := map[string]bool{"GET /login": true, "POST /login": false, "GET /healthz": true, "GET /static/*": true}
	routes := env.server.Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, r := range routes {
		path := fillParams(r.Path)
		res := env.anonymous().request(r.Method, path, strings.NewReader(""), map[string]string{
			"Content-Type": "application/x-www-form-urlencoded",
		})
		key := r.Method + " " + r.Path
		ok := res.StatusCode >= 200 && res.StatusCode < 300
		if want, listed := open[key]; listed {
			if ok != want {
				t.Errorf("%s (%s): status %d", key, r.Access, res.StatusCode)
			}
			continue
		}
		if ok {
			t.Errorf("%s (%s) answered %d to an anonymous request", key, r.Access, res.StatusCode)
		}
		loc := res.Header.Get("Location")
		switch {
		case strings.HasPrefix(r.Path, "/api/"), r.Path == metricsPath:
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401", key, res.StatusCode)
			}
		case strings.HasPrefix(r.Path, "/admin"), r.Access != string(AccessPublic):
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
				t.Errorf("%s: %d to %q, want 303 to /login", key, res.StatusCode, loc)
			}
		}
	}
	if n := env.imageCount(); n != 1 {
		t.Errorf("%d images after the walk, want 1", n)
	}
}

// TestRoutesAccessLevels checks that every admin route refuses a plain
// signed-in user, and that the table holds only known access levels.
func TestRoutesAccessLevels(t *testing.T) {
	env := newTestEnv(t)
	alice := env.signIn("alice")
	for _, r := range env.server.Routes() {
		switch Access(r.Access) {
		case AccessPublic, AccessUser, AccessGroupAdmin, AccessGroupMember, AccessImageAdmin:
			continue
		case AccessAdmin:
		default:
			t.Fatalf("%s %s: unknown access %q", r.Method, r.Path, r.Access)
		}
		res := alice.request(r.Method, fillParams(r.Path), strings.NewReader("_csrf="+alice.csrf), map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": alice.csrf,
		})
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("alice %s %s: %d, want 403", r.Method, r.Path, res.StatusCode)
		}
	}
}

// TestRoutesUnique guards against two lines of the table for the same route.
func TestRoutesUnique(t *testing.T) {
	env := newTestEnv(t)
	seen := map[string]bool{}
	for _, r := range env.server.Routes() {
		key := r.Method + " " + r.Path
		if seen[key] {
			t.Errorf("%s is in the table twice", key)
		}
		seen[key] = true
	}
}

// TestRouteParams keeps one parameter name per concept: the parameter after
// a collection's segment is named for what it picks (/groups/:group,
// /users/:username, /images/:name, …), no other name is used, every
// group-scoped route has the :group its access check reads, and every
// image-scoped route the :name or :id of its image.
func TestRouteParams(t *testing.T) {
	paramOf := map[string]string{
		"groups":  "group",
		"members": "username",
		"users":   "username",
		"images":  "name",
		"secrets": "name",
		"builds":  "id",
		"tokens":  "id",
	}
	env := newTestEnv(t)
	for _, r := range env.server.Routes() {
		key := r.Method + " " + r.Path
		params := map[string]bool{}
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			name, ok := strings.CutPrefix(p, ":")
			if !ok {
				continue
			}
			params[name] = true
			if want := paramOf[parts[i-1]]; name != want {
				t.Errorf("%s: :%s after /%s/, want :%s", key, name, parts[i-1], want)
			}
		}
		switch Access(r.Access) {
		case AccessGroupAdmin, AccessGroupMember:
			if !params["group"] {
				t.Errorf("%s (%s) has no :group to check access by", key, r.Access)
			}
		case AccessImageAdmin:
			if !params["name"] && !params["id"] {
				t.Errorf("%s (%s) has neither :name nor :id to check access by", key, r.Access)
			}
		}
	}
}
