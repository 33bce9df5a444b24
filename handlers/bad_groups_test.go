package handlers

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"imagehub/store"
)

// groupsPath is one way an image's groups are sent: it sends groups (and a
// valid image around them) as who, and answers the status and the reason
// shown at the field "groups".
type groupsPath struct {
	name string
	as   string
	send func(c *client, groups []string) (status int, reason string)
	// ok is the status of a request the path accepts.
	ok int
}

// apiGroups sends body with "groups" set as JSON and reads the reason at
// fields["groups"].
func apiGroups(method, path string, body map[string]any) func(*client, []string) (int, string) {
	return func(c *client, groups []string) (int, string) {
		b := map[string]any{"groups": groups}
		for k, v := range body {
			b[k] = v
		}
		var e errorBody
		res := c.json(method, path, b, &e)
		return res.StatusCode, e.Fields["groups"]
	}
}

// formGroups posts form with a "groups" box per name and reads the reason
// under the groups field of the page that comes back.
func formGroups(path string, form url.Values) func(*client, []string) (int, string) {
	return func(c *client, groups []string) (int, string) {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f["groups"] = groups
		res := c.postForm(path, f)
		doc := c.readPage(res)
		return res.StatusCode, strings.TrimSpace(doc.Find("#groups-error").Text())
	}
}

// groupsPaths are every path on which an image's groups are sent: the API's
// create (existing and custom, of the System and of a group) and patch, and
// the forms (add, build, edit, Edit Groups) of both scopes. "sys" is a
// System image and "own" team-a's own image; alice is a group admin of
// team-a.
func groupsPaths() []groupsPath {
	image := map[string]any{"displayName": "fresh", "type": "cpu", "url": "docker.io/library/busybox"}
	custom := map[string]any{"displayName": "fresh", "type": "cpu", "build": map[string]string{"baseImage": "debian:bookworm"}}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{k: v}
		for key, val := range m {
			out[key] = val
		}
		return out
	}
	form := url.Values{"displayName": {"fresh"}, "type": {"cpu"}, "url": {"docker.io/library/busybox"}}
	build := url.Values{"kind": {"build"}, "displayName": {"fresh"}, "type": {"cpu"}, "baseImage": {"debian:bookworm"}}
	edit := url.Values{"displayName": {"sys"}, "type": {"cpu"}, "url": {"docker.io/library/busybox"}}
	editOwn := url.Values{"displayName": {"own"}, "type": {"cpu"}, "url": {"docker.io/library/busybox"}}
	const created, saved, redirect = http.StatusCreated, http.StatusOK, http.StatusSeeOther
	return []groupsPath{
		{"API create", "admin", apiGroups("POST", "/api/v1/images", image), created},
		{"API create global", "admin", apiGroups("POST", "/api/v1/images", with(image, "global", true)), created},
		{"API create custom", "admin", apiGroups("POST", "/api/v1/images", custom), created},
		{"API patch", "admin", apiGroups("PATCH", "/api/v1/images/sys", nil), saved},
		{"API patch global", "admin", apiGroups("PATCH", "/api/v1/images/sys", map[string]any{"global": true}), saved},
		{"API group create", "alice", apiGroups("POST", "/api/v1/groups/team-a/images", image), created},
		{"API group create custom", "alice", apiGroups("POST", "/api/v1/groups/team-a/images", custom), created},
		{"API group patch", "alice", apiGroups("PATCH", "/api/v1/images/own", nil), saved},
		{"form add", "admin", formGroups("/admin/images", form), redirect},
		{"form build", "admin", formGroups("/admin/images", build), redirect},
		{"form edit", "admin", formGroups("/admin/images/sys", edit), redirect},
		{"form Edit Groups", "admin", formGroups("/admin/images/sys/groups", nil), redirect},
		{"form edit of a group's image", "admin", formGroups("/admin/images/own", editOwn), redirect},
		{"group form add", "alice", formGroups("/groups/team-a/images", form), redirect},
		{"group form build", "alice", formGroups("/groups/team-a/images", build), redirect},
		{"group form edit", "alice", formGroups("/groups/team-a/images/own", editOwn), redirect},
	}
}

// badGroupsCases are group lists that are refused, and the reason each gets.
var badGroupsCases = []struct {
	name   string
	groups []string
	want   string
}{
	{"unknown", []string{"nope"}, `Unknown group "nope".`},
	{"unknown after a known one", []string{"team-a", "nope"}, `Unknown group "nope".`},
	{"two unknown", []string{"nope", "ghost"}, `Unknown groups "nope", "ghost".`},
	{"empty name", []string{""}, "A group name is blank."},
	{"blank name", []string{"  "}, "A group name is blank."},
	{"blank after a known one", []string{"team-a", " "}, "A group name is blank."},
	{"name with a space before", []string{" team-a"}, `Unknown group " team-a".`},
	{"name in capitals", []string{"TEAM-A"}, `Unknown group "TEAM-A".`},
}

// newGroupsEnv is the server of groupsPaths: groups team-a and team-b, the
// images "sys" and "own", and alice a group admin of team-a.
func newGroupsEnv(t *testing.T) *testEnv {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	env.mustCreateGroup("team-b")
	if err := env.store.SetMember(t.Context(), "team-a", "alice", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	env.mustCreateImage(&store.Image{DisplayName: "sys", URL: "docker.io/library/busybox", Groups: []string{"team-b"}})
	env.mustCreateImage(&store.Image{DisplayName: "own", URL: "docker.io/library/busybox", Owner: "team-a"})
	return env
}

// TestBadGroupsAreRefusedEverywhere sends every bad group list on every
// path: each is refused with 422 and the reason at "groups", and nothing
// changes. Then the same request with a good list is accepted, so the
// refusal was the groups'.
func TestBadGroupsAreRefusedEverywhere(t *testing.T) {
	env := newGroupsEnv(t)
	clients := map[string]*client{"admin": env.signIn("admin"), "alice": env.signIn("alice")}
	for _, p := range groupsPaths() {
		t.Run(p.name, func(t *testing.T) {
			c := clients[p.as]
			for _, tc := range badGroupsCases {
				env.assertUnchanged(t, func() {
					status, reason := p.send(c, tc.groups)
					if status != http.StatusUnprocessableEntity || reason != tc.want {
						t.Errorf("%s %q: %d %q, want 422 %q", tc.name, tc.groups, status, reason, tc.want)
					}
				})
			}
			good := []string{"team-b", "team-a"}
			if p.as == "alice" || strings.Contains(p.name, "group's") {
				good = []string{"team-a"}
			}
			if status, reason := p.send(c, good); status != p.ok {
				t.Errorf("with groups %q: %d %q, want %d", good, status, reason, p.ok)
			}
		})
	}
}

// TestGroupsListedTwiceCountOnce: a name listed twice is one grant, not a
// refusal; nothing is lost.
func TestGroupsListedTwiceCountOnce(t *testing.T) {
	env := newGroupsEnv(t)
	admin := env.signIn("admin")
	var img store.Image
	res := admin.json("POST", "/api/v1/images", map[string]any{
		"displayName": "twice", "type": "cpu", "url": "busybox", "groups": []string{"team-a", "team-a", "team-b"},
	}, &img)
	if res.StatusCode != http.StatusCreated || !slices.Equal(img.Groups, []string{"team-a", "team-b"}) {
		t.Errorf("create: %d %q, want 201 with team-a and team-b", res.StatusCode, img.Groups)
	}
}

// TestGlobalFormIgnoresItsHiddenGroups: with Global on, the forms hide the
// group boxes (they keep whatever was ticked) and do not read them, so a
// stale box is no reason to refuse; the API, which sends what its client
// means, refuses them (TestBadGroupsAreRefusedEverywhere).
func TestGlobalFormIgnoresItsHiddenGroups(t *testing.T) {
	env := newGroupsEnv(t)
	admin := env.signIn("admin")
	res := admin.postForm("/admin/images/sys/groups", url.Values{"global": {"on"}, "groups": {"nope"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("Edit Groups, global with a stale box: %d, want 303", res.StatusCode)
	}
	img, err := env.store.FindImage(t.Context(), "sys")
	if err != nil || !img.Global || len(img.Groups) != 0 {
		t.Errorf("saved %+v (%v), want global without groups", img, err)
	}
}

// TestGroupErrorShownOnAGroupsForm: a group's form has no group boxes, so
// the reason for group names sent to it is shown by its access paragraph.
func TestGroupErrorShownOnAGroupsForm(t *testing.T) {
	env := newGroupsEnv(t)
	alice := env.signIn("alice")
	res := alice.postForm("/groups/team-a/images/own", url.Values{
		"displayName": {"own"}, "type": {"cpu"}, "url": {"busybox"}, "groups": {"team-b"},
	})
	doc := alice.readPage(res)
	field := doc.Find(`[data-field="groups"].has-error`)
	if res.StatusCode != http.StatusUnprocessableEntity || field.Find("#group-access").Length() != 1 ||
		!strings.Contains(field.Find("#groups-error").Text(), "used by its group") {
		t.Errorf("%d, groups field %q: want 422 with the reason by the access paragraph", res.StatusCode, field.Text())
	}
}
