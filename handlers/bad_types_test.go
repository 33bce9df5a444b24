package handlers

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"imagehub/store"
)

// wrongTypeCase is one JSON body with a value of the wrong type, sent to one
// route, and the reason expected at one field.
type wrongTypeCase struct {
	method, path, body string
	field, want        string
}

// wrongTypeCases are, per route family (images, rebuild, groups, members,
// secrets, users, tokens), values of the wrong JSON type: each answer names
// the type expected. "sys" is a System image, "sci" a custom one; the
// group team-a exists.
func wrongTypeCases() []wrongTypeCase {
	const (
		str, boolean, list = "Must be a string.", "Must be true or false.", "Must be a list of strings."
		object, tm         = "Must be an object, or null.", "Must be a time such as 2030-01-31T00:00:00Z, or null."
		image              = `"displayName": "fresh", "type": "cpu", "url": "busybox", `
	)
	var cases []wrongTypeCase
	add := func(method, path, body, field, want string) {
		cases = append(cases, wrongTypeCase{method, path, body, field, want})
	}
	for _, images := range []string{"/api/v1/images", "/api/v1/groups/team-a/images"} {
		add("POST", images, `{`+image+`"global": "yes"}`, "global", boolean)
		add("POST", images, `{"displayName": 5, "type": "cpu", "url": "busybox"}`, "displayName", str)
		add("POST", images, `{`+image+`"groups": "team-a"}`, "groups", list)
		add("POST", images, `{`+image+`"groups": ["team-a", 5]}`, "groups", list)
		add("POST", images, `{`+image+`"groups": {"team-a": true}}`, "groups", list)
		add("POST", images, `{"displayName": "fresh", "type": 1, "url": "busybox"}`, "type", str)
		add("POST", images, `{"displayName": "fresh", "type": "cpu", "url": ["busybox"]}`, "url", str)
		add("POST", images, `{`+image+`"useGpuUrl": 1}`, "useGpuUrl", boolean)
		add("POST", images, `{"displayName": "fresh", "type": "cpu", "build": "debian"}`, "build", object)
		add("POST", images, `{"displayName": "fresh", "type": "cpu", "build": {"baseImage": "debian", "apt": 5}}`, "build.apt", str)
		add("POST", images, `{"displayName": "fresh", "type": "cpu", "build": {"baseImage": "debian", "aptPackages": "curl"}}`, "build.aptPackages", "Unknown field.")
	}
	add("PATCH", "/api/v1/images/sys", `{"global": "false"}`, "global", boolean)
	add("PATCH", "/api/v1/images/sys", `{"description": 5}`, "description", str)
	add("PATCH", "/api/v1/images/sys", `{"groups": [null, 5]}`, "groups", list)
	add("PATCH", "/api/v1/images/sci", `{"build": {"pip": ["numpy"]}}`, "build.pip", str)
	add("POST", "/api/v1/images/sci/rebuild", `{"baseImage": "debian", "apt": 5}`, "apt", str)
	add("POST", "/api/v1/images/sci/rebuild", `{"baseImage": ["debian"]}`, "baseImage", str)
	add("POST", "/api/v1/groups", `{"name": 5}`, "name", str)
	add("POST", "/api/v1/groups", `{"name": "team", "displayName": true}`, "displayName", str)
	add("PUT", "/api/v1/groups/team-a/members/alice", `{"role": 5}`, "role", str)
	add("PUT", "/api/v1/groups/team-a/members/alice", `{"role": ["admin"]}`, "role", str)
	add("POST", "/api/v1/secrets", `{"name": "reg", "registryHost": "r.example.com", "username": "u", "password": 12345678}`, "password", str)
	add("POST", "/api/v1/secrets", `{"name": "reg", "registryHost": {}, "username": "u", "password": "p"}`, "registryHost", str)
	add("POST", "/api/v1/users", `{"username": "bob", "password": "password1", "admin": "yes"}`, "admin", boolean)
	add("POST", "/api/v1/users", `{"username": 5, "password": "password1"}`, "username", str)
	add("POST", "/api/v1/users", `{"username": "bob", "password": 12345678}`, "password", str)
	add("PATCH", "/api/v1/users/alice", `{"admin": 1}`, "admin", boolean)
	add("PATCH", "/api/v1/users/alice", `{"password": 12345678}`, "password", str)
	add("POST", "/api/v1/tokens", `{"name": 5}`, "name", str)
	add("POST", "/api/v1/tokens", `{"name": "ci", "scope": 5}`, "scope", str)
	add("POST", "/api/v1/tokens", `{"name": "ci", "expiresAt": "next week"}`, "expiresAt", tm)
	add("POST", "/api/v1/tokens", `{"name": "ci", "expiresAt": 1700000000}`, "expiresAt", tm)
	return cases
}

// newTypesEnv is the server of wrongTypeCases.
func newTypesEnv(t *testing.T) *testEnv {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	env.mustCreateImage(&store.Image{DisplayName: "sys", URL: "docker.io/library/busybox", Global: true})
	env.mustCreateImage(&store.Image{DisplayName: "sci", Global: true, Recipe: &store.Recipe{BaseImage: "docker.io/library/debian:bookworm"}})
	return env
}

// TestWrongTypesNameTheTypeExpected sends each wrong type to its route:
// 422, the type expected at the field, and nothing changed.
func TestWrongTypesNameTheTypeExpected(t *testing.T) {
	env := newTypesEnv(t)
	admin := env.signIn("admin")
	for _, tc := range wrongTypeCases() {
		env.assertUnchanged(t, func() {
			var e errorBody
			res := admin.json(tc.method, tc.path, tc.body, &e)
			if res.StatusCode != http.StatusUnprocessableEntity || e.Fields[tc.field] != tc.want {
				t.Errorf("%s %s %s: %d %v, want 422 with %q at %s", tc.method, tc.path, tc.body, res.StatusCode, e.Fields, tc.want, tc.field)
			}
		})
	}
}

// TestMalformedJSONSaysWhere sends JSON that does not parse to every JSON
// route family: 400, with the byte where the parser stopped, and nothing
// changed.
func TestMalformedJSONSaysWhere(t *testing.T) {
	env := newTypesEnv(t)
	admin := env.signIn("admin")
	routes := [][2]string{
		{"POST", "/api/v1/images"}, {"PATCH", "/api/v1/images/sys"}, {"POST", "/api/v1/groups/team-a/images"},
		{"POST", "/api/v1/images/sci/rebuild"}, {"POST", "/api/v1/groups"},
		{"PUT", "/api/v1/groups/team-a/members/alice"}, {"POST", "/api/v1/secrets"},
		{"POST", "/api/v1/users"}, {"PATCH", "/api/v1/users/alice"}, {"POST", "/api/v1/tokens"},
	}
	bodies := []struct{ body, want string }{
		{`{"name": }`, "at byte 10"},
		{`{"name": "x",}`, "at byte 14"},
		{`{"name": "x"`, "ends too early (at byte 12)"},
		{`{'name': 'x'}`, "at byte 2"},
	}
	for _, r := range routes {
		for _, b := range bodies {
			env.assertUnchanged(t, func() {
				var e errorBody
				res := admin.json(r[0], r[1], b.body, &e)
				if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(e.Error, "Invalid JSON: ") || !strings.Contains(e.Error, b.want) {
					t.Errorf("%s %s %s: %d %q, want 400 saying %q", r[0], r[1], b.body, res.StatusCode, e.Error, b.want)
				}
			})
		}
	}
}

// TestJSONKind names the JSON type of each kind of Go value a body is read
// into, whatever the Go type is called.
func TestJSONKind(t *testing.T) {
	cases := []struct {
		value any
		want  string
	}{
		{"", "a string"},
		{store.RoleAdmin, "a string"},
		{true, "true or false"},
		{0, "a whole number"},
		{int64(0), "a whole number"},
		{uint8(0), "a whole number"},
		{1.5, "a number"},
		{[]string{}, "a list of strings"},
		{[]int{}, "a list"},
		{store.Recipe{}, "an object"},
		{map[string]string{}, "an object"},
		{time.Time{}, "a time such as 2030-01-31T00:00:00Z"},
		{&time.Time{}, "a time such as 2030-01-31T00:00:00Z, or null"},
		{(*strictRecipe)(nil), "an object, or null"},
	}
	for _, tc := range cases {
		if got := jsonKind(reflect.TypeOf(tc.value)); got != tc.want {
			t.Errorf("jsonKind(%T) = %q, want %q", tc.value, got, tc.want)
		}
	}
}
