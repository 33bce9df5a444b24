package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"imagehub/store"
)

// succeededBuild runs a build of a custom image to success with a package
// list, as the queue records it, and returns its id.
func (env *testEnv) succeededBuild(image string, digest int, pkgs ...store.Package) int64 {
	env.t.Helper()
	ctx := context.Background()
	img, err := env.store.FindImage(ctx, image)
	if err != nil {
		env.t.Fatal(err)
	}
	b, err := env.store.CreateBuild(ctx, image, *img.Recipe, "registry.test/imagehub/"+image+":t"+strconv.Itoa(digest))
	if err != nil {
		env.t.Fatal(err)
	}
	if err := env.store.StartBuild(ctx, b.ID); err != nil {
		env.t.Fatal(err)
	}
	if pkgs == nil {
		pkgs = []store.Package{}
	}
	if err := env.store.SucceedBuild(ctx, b.ID, fmt.Sprintf("sha256:%064x", digest), pkgs); err != nil {
		env.t.Fatal(err)
	}
	return b.ID
}

func aptPkg(name, version string) store.Package {
	return store.Package{Manager: store.ManagerApt, Name: name, Version: version}
}

// listedImage makes a custom image of owner with two succeeded builds
// whose lists differ by hello and python (added), curl (removed) and numpy
// (changed); it returns the image's name and the builds' ids.
func (env *testEnv) listedImage(name, owner string) (string, int64, int64) {
	env.t.Helper()
	img := env.mustCreateImage(&store.Image{DisplayName: name, Owner: owner, Global: owner == store.OwnerSystem,
		Recipe: &store.Recipe{BaseImage: "docker.io/library/debian:bookworm", Apt: "jq"}})
	numpy := func(v string) store.Package {
		return store.Package{Manager: store.ManagerPip, Name: "numpy", Version: v}
	}
	first := env.succeededBuild(img.Name, 1, aptPkg("jq", "1.6-2.1+deb12u1"), aptPkg("libjq1", "1.6-2.1+deb12u1"), aptPkg("curl", "7.88"), numpy("1.26.4"))
	second := env.succeededBuild(img.Name, 2, aptPkg("jq", "1.6-2.1+deb12u1"), aptPkg("libjq1", "1.6-2.1+deb12u1"), aptPkg("hello", "2.10-3"), numpy("2.0.0"),
		store.Package{Manager: store.ManagerConda, Name: "python", Version: "3.12.1"})
	return img.Name, first, second
}

type packagesBody struct {
	Items []store.Package `json:"items"`
	Total int             `json:"total"`
}

// TestAPIBuildPackages lists a build's packages a page at a time, by name
// and by manager; bad filters are 422 at their field, a build without a
// list is 404 saying why.
func TestAPIBuildPackages(t *testing.T) {
	env := newTestEnv(t)
	admin := env.withToken("admin", store.ScopeAdmin)
	_, _, id := env.listedImage("listed", store.OwnerSystem)
	path := "/api/v1/builds/" + strconv.FormatInt(id, 10) + "/packages"
	names := func(b packagesBody) []string {
		var out []string
		for _, p := range b.Items {
			out = append(out, string(p.Manager)+":"+p.Name+"="+p.Version)
		}
		return out
	}
	for _, c := range []struct {
		query string
		want  []string
		total int
	}{
		{"", []string{"apt:hello=2.10-3", "apt:jq=1.6-2.1+deb12u1", "apt:libjq1=1.6-2.1+deb12u1", "conda:python=3.12.1", "pip:numpy=2.0.0"}, 5},
		{"?q=JQ", []string{"apt:jq=1.6-2.1+deb12u1", "apt:libjq1=1.6-2.1+deb12u1"}, 2},
		{"?manager=pip", []string{"pip:numpy=2.0.0"}, 1},
		{"?q=py&manager=conda", []string{"conda:python=3.12.1"}, 1},
		{"?perPage=2&page=2", []string{"apt:libjq1=1.6-2.1+deb12u1", "conda:python=3.12.1"}, 5},
		{"?perPage=2&page=9", nil, 5},
		{"?q=" + url.QueryEscape("%"), nil, 0},
	} {
		var got packagesBody
		res := admin.json("GET", path+c.query, nil, &got)
		if res.StatusCode != http.StatusOK || !slices.Equal(names(got), c.want) || got.Total != c.total || got.Items == nil {
			t.Errorf("%s: %d %v (total %d), want %v (total %d)", c.query, res.StatusCode, names(got), got.Total, c.want, c.total)
		}
	}
	for query, field := range map[string]string{"?manager=npm": "manager", "?perPage=1000": "perPage", "?page=0": "page"} {
		var e errorBody
		if res := admin.json("GET", path+query, nil, &e); res.StatusCode != http.StatusUnprocessableEntity || e.Fields[field] == "" {
			t.Errorf("%s: %d %+v, want 422 at %s", query, res.StatusCode, e, field)
		}
	}
	// A build that has not succeeded has no list.
	var img customImageBody
	admin.json("POST", "/api/v1/images", map[string]any{"displayName": "queued", "type": "cpu", "build": map[string]string{"baseImage": "debian"}}, &img)
	var e errorBody
	if res := admin.json("GET", "/api/v1/builds/"+strconv.FormatInt(img.LatestBuild.ID, 10)+"/packages", nil, &e); res.StatusCode != http.StatusNotFound || !strings.Contains(e.Error, "has not succeeded") {
		t.Errorf("a queued build's packages: %d %+v, want 404 saying it has not succeeded", res.StatusCode, e)
	}
	if res := admin.json("GET", "/api/v1/builds/9999/packages", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown build's packages: %d, want 404", res.StatusCode)
	}
}

// TestAPIPackagesAccess: a build's packages and an image's diff are open to
// whom the build and the image are, and to nobody else.
func TestAPIPackagesAccess(t *testing.T) {
	env := newTestEnv(t)
	for _, g := range []string{"team-g", "team-h"} {
		env.mustCreateGroup(g)
	}
	for _, u := range []string{"gina", "hank"} {
		if err := env.store.CreateUser(context.Background(), &store.User{Username: u, Password: testAdminPassword}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := env.store.SetMember(ctx, "team-g", "gina", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := env.store.SetMember(ctx, "team-h", "hank", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := env.store.SetMember(ctx, "team-g", "alice", store.RoleMember); err != nil {
		t.Fatal(err)
	}
	image, _, id := env.listedImage("listed", "team-g")
	build := get(env.withToken, "/api/v1/builds/"+strconv.FormatInt(id, 10))
	for who, want := range map[string]int{"admin": 200, "gina": 200, "hank": 403, "alice": 403} {
		for _, path := range []string{"/api/v1/builds/" + strconv.FormatInt(id, 10) + "/packages", "/api/v1/images/" + image + "/diff"} {
			if got := get(env.withToken, path)(who); got != want {
				t.Errorf("%s: %s gets %d, want %d", path, who, got, want)
			}
		}
		if got := build(who); got != want {
			t.Errorf("the build itself: %s gets %d, want %d as for its packages", who, got, want)
		}
	}
	if res := env.anonymous().json("GET", "/api/v1/builds/"+strconv.FormatInt(id, 10)+"/packages", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", res.StatusCode)
	}
}

// get returns the status a user's token gets for GET path.
func get(token func(string, store.TokenScope) *client, path string) func(who string) int {
	return func(who string) int { return token(who, store.ScopeAdmin).json("GET", path, nil, nil).StatusCode }
}

// TestAPIImageDiff compares builds of an image, by default its last two
// successful ones; what cannot be compared is 422 with the reason at its
// field, an unknown image or build 404.
func TestAPIImageDiff(t *testing.T) {
	env := newTestEnv(t)
	admin := env.withToken("admin", store.ScopeAdmin)
	image, first, second := env.listedImage("listed", store.OwnerSystem)
	var d store.PackageDiff
	res := admin.json("GET", "/api/v1/images/"+image+"/diff", nil, &d)
	want := store.PackageDiff{From: first, To: second,
		Added:   []store.Package{aptPkg("hello", "2.10-3"), {Manager: store.ManagerConda, Name: "python", Version: "3.12.1"}},
		Removed: []store.Package{aptPkg("curl", "7.88")},
		Changed: []store.PackageChange{{Manager: store.ManagerPip, Name: "numpy", From: "1.26.4", To: "2.0.0"}}}
	if res.StatusCode != http.StatusOK || fmt.Sprint(d) != fmt.Sprint(want) {
		t.Errorf("default diff: %d %+v\nwant %+v", res.StatusCode, d, want)
	}
	var raw map[string]any
	admin.json("GET", fmt.Sprintf("/api/v1/images/%s/diff?from=%d&to=%d", image, second, second), nil, &raw)
	for _, k := range []string{"added", "removed", "changed"} {
		if l, ok := raw[k].([]any); !ok || len(l) != 0 {
			t.Errorf("a build against itself: %s = %v, want []", k, raw[k])
		}
	}

	_, _, otherBuild := env.listedImage("other", store.OwnerSystem)
	r := store.Recipe{BaseImage: "docker.io/library/debian:bookworm"}
	env.mustCreateImage(&store.Image{DisplayName: "once", Global: true, Recipe: &r})
	env.succeededBuild("once", 7)
	for _, c := range []struct {
		path   string
		status int
		field  string
	}{
		{fmt.Sprintf("/api/v1/images/%s/diff?from=%d", image, otherBuild), 422, "from"},
		{fmt.Sprintf("/api/v1/images/%s/diff?to=%d", image, first), 422, "from"},
		{fmt.Sprintf("/api/v1/images/%s/diff?from=abc&to=-1", image), 422, "to"},
		{"/api/v1/images/once/diff", 422, "from"},
		{fmt.Sprintf("/api/v1/images/%s/diff?from=99999", image), 404, ""},
		{"/api/v1/images/nope/diff", 404, ""},
	} {
		var e errorBody
		res := admin.json("GET", c.path, nil, &e)
		if res.StatusCode != c.status || (c.field != "" && e.Fields[c.field] == "") {
			t.Errorf("%s: %d %+v, want %d at %q", c.path, res.StatusCode, e, c.status, c.field)
		}
	}
}

// TestBuildPagePackages: a succeeded build's page shows its packages with
// the counts of each manager, searchable (htmx swaps the table, the form
// works without script), and what changed since the previous successful
// build; a build without a list shows neither.
func TestBuildPagePackages(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	_, first, second := env.listedImage("listed", store.OwnerSystem)
	doc, status := admin.getPage("/admin/builds/" + strconv.FormatInt(second, 10))
	if status != http.StatusOK {
		t.Fatalf("build page: %d", status)
	}
	if got := doc.Find("#package-counts").Text(); got != "3 apt · 1 pip · 1 conda" {
		t.Errorf("counts %q", got)
	}
	if n := doc.Find("#packages-table tbody tr").Length(); n != 5 {
		t.Errorf("%d rows, want 5", n)
	}
	if got := strings.TrimSpace(doc.Find("#diff-summary").Text()); got != "+2 added, 1 removed, 1 changed" {
		t.Errorf("changes summary %q", got)
	}
	if got := doc.Find("#package-changes h2 a").AttrOr("href", ""); got != "/admin/builds/"+strconv.FormatInt(first, 10) {
		t.Errorf("the changes are not since build %d: %q", first, got)
	}
	if got := doc.Find("#diff-changed li").Text(); !strings.Contains(got, "1.26.4") || !strings.Contains(got, "2.0.0") {
		t.Errorf("changed: %q", got)
	}

	res := admin.htmx("GET", "/admin/builds/"+strconv.FormatInt(second, 10)+"?q=jq&manager=apt", nil)
	frag := admin.readPage(res)
	if frag.Find("#packages-table").Length() != 1 || frag.Find("#packages").Length() != 0 || frag.Find("tbody tr").Length() != 2 {
		t.Errorf("the live search's fragment: %s", readAllDoc(frag))
	}
	doc, _ = admin.getPage("/admin/builds/" + strconv.FormatInt(second, 10) + "?q=numpy")
	if rows := doc.Find("#packages-table tbody tr"); rows.Length() != 1 || !strings.Contains(rows.Text(), "numpy") || doc.Find("#package-search").AttrOr("value", "") != "numpy" {
		t.Errorf("the search without script: %d rows %q", rows.Length(), rows.Text())
	}

	// The first build has packages and nothing to compare with.
	doc, _ = admin.getPage("/admin/builds/" + strconv.FormatInt(first, 10))
	if doc.Find("#packages").Length() != 1 || doc.Find("#package-changes").Length() != 0 {
		t.Errorf("the first build: packages %d, changes %d; want 1 and 0", doc.Find("#packages").Length(), doc.Find("#package-changes").Length())
	}
}

// TestBuildPagePackagesPages: a long list is shown a page at a time.
func TestBuildPagePackagesPages(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	r := store.Recipe{BaseImage: "docker.io/library/debian:bookworm"}
	env.mustCreateImage(&store.Image{DisplayName: "big", Global: true, Recipe: &r})
	var pkgs []store.Package
	for i := range 120 {
		pkgs = append(pkgs, aptPkg(fmt.Sprintf("lib%03d", i), "1"))
	}
	id := env.succeededBuild("big", 1, pkgs...)
	doc, _ := admin.getPage(fmt.Sprintf("/admin/builds/%d?page=3", id))
	if n := doc.Find("#packages-table tbody tr").Length(); n != 20 || !strings.Contains(doc.Find("#packages-table .pager").Text(), "101–120 of 120 packages") {
		t.Errorf("page 3: %d rows, pager %q", n, doc.Find("#packages-table .pager").Text())
	}
	if href := doc.Find(`#packages-table a.page`).First().AttrOr("href", ""); href != fmt.Sprintf("/admin/builds/%d", id) {
		t.Errorf("the link to page 1: %q", href)
	}
}

// TestImagePageCompare: the image page compares any two builds with a
// list, by default the newest two, and says why it cannot compare others.
func TestImagePageCompare(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	image, first, second := env.listedImage("listed", store.OwnerSystem)
	doc, status := admin.getPage("/admin/images/" + image)
	if status != http.StatusOK || doc.Find("#compare-from option").Length() != 2 {
		t.Fatalf("image page: %d, %d builds to compare from", status, doc.Find("#compare-from option").Length())
	}
	if from, _ := doc.Find("#compare-from option[selected]").Attr("value"); from != strconv.FormatInt(first, 10) {
		t.Errorf("compare from %q by default, want %d", from, first)
	}
	if doc.Find("#compare-result").Length() != 0 {
		t.Error("a comparison nobody asked for")
	}
	doc, status = admin.getPage(fmt.Sprintf("/admin/images/%s?from=%d&to=%d", image, second, first))
	if got := strings.TrimSpace(doc.Find("#compare-result #diff-summary").Text()); status != http.StatusOK || got != "+1 added, 2 removed, 1 changed" {
		t.Errorf("comparing %d to %d: %d %q", second, first, status, got)
	}
	if got := doc.Find("#diff-added li").Text(); !strings.Contains(got, "curl") {
		t.Errorf("added from %d to %d: %q, want curl", second, first, got)
	}
	doc, status = admin.getPage(fmt.Sprintf("/admin/images/%s?from=99999&to=%d", image, first))
	if status != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#compare-error").Text(), "not found") {
		t.Errorf("an unknown build: %d %q", status, doc.Find("#compare-error").Text())
	}
}

func readAllDoc(doc interface{ Html() (string, error) }) string {
	s, _ := doc.Html()
	return s
}
