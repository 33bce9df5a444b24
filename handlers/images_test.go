package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"imagehub/store"
)

func TestImagesTableRendering(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	env.mustCreateGroup("team-b")
	env.mustCreateImage(&store.Image{DisplayName: "python", Type: store.TypeCPU, URL: "docker.io/library/python:3.12",
		Description: `<script>alert("owned")</script>`, Global: true})
	env.mustCreateImage(&store.Image{DisplayName: "cuda", Type: store.TypeGPU, URL: "docker.io/nvidia/cuda:12.4",
		Groups: []string{"team-a", "team-b"}})
	env.mustCreateImage(&store.Image{DisplayName: "custom", Type: store.TypeUniversal,
		Recipe: &store.Recipe{BaseImage: "docker.io/library/python:3.12", Pip: "numpy"}})
	admin := env.signIn("admin")
	res := admin.get("/admin/images")
	body := readAll(t, res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if !strings.Contains(body, `&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;`) {
		t.Error("the description's script is not escaped")
	}
	doc := parseHTML(t, body)
	if n := doc.Find("script").Length(); n != 1 {
		t.Errorf("%d script elements, want only htmx's", n)
	}
	rows := doc.Find("#images-table tbody tr")
	if rows.Length() != 3 {
		t.Fatalf("%d rows, want 3", rows.Length())
	}
	row := func(name string) string { return rowText(doc.Find("#image-" + name)) }
	if got := doc.Find("#image-custom .warn").AttrOr("title", ""); got != "not ready" {
		t.Errorf("the not-ready image's mark has title %q, want \"not ready\"", got)
	}
	if doc.Find("#image-python .warn").Length() != 0 {
		t.Error("a ready image has the warning mark")
	}
	if got := row("cuda"); !strings.Contains(got, "team-a, team-b") || !strings.Contains(got, "GPU") {
		t.Errorf("cuda row = %q, want its groups and type", got)
	}
	if got := doc.Find("#image-python td.access").Text(); strings.TrimSpace(got) != "Global" {
		t.Errorf("python access = %q, want Global", got)
	}
	del := doc.Find("#image-python button[data-hx-delete]")
	if del.AttrOr("data-hx-delete", "") != "/admin/images/python" || !strings.Contains(del.AttrOr("data-hx-confirm", ""), "python") {
		t.Errorf("delete button: data-hx-delete=%q data-hx-confirm=%q", del.AttrOr("data-hx-delete", ""), del.AttrOr("data-hx-confirm", ""))
	}
	if doc.Find(`#image-python a[href="/admin/images/python/edit"]`).Length() != 1 {
		t.Error("no edit link")
	}
	if doc.Find(`a[href="/admin/images/new"]`).Length() == 0 {
		t.Error("no + Add button")
	}
	search := doc.Find("input#image-search")
	if search.AttrOr("data-hx-get", "") != "/admin/images" || !strings.Contains(search.AttrOr("data-hx-trigger", ""), "input changed delay:300ms") {
		t.Errorf("search box: data-hx-get=%q data-hx-trigger=%q", search.AttrOr("data-hx-get", ""), search.AttrOr("data-hx-trigger", ""))
	}
	if h := doc.Find("body").AttrOr("data-hx-headers", ""); !strings.Contains(h, "X-CSRF-Token") || !strings.Contains(h, admin.csrf) {
		t.Errorf("body data-hx-headers = %q, want the CSRF token", h)
	}
	for _, nav := range []string{"/admin/images", "/admin/groups", "/admin/secrets", "/images"} {
		if doc.Find(`nav.mainnav a[href="`+nav+`"]`).Length() != 1 {
			t.Errorf("no navigation link to %s", nav)
		}
	}
	if doc.Find(`form[action="/logout"] button`).Length() != 1 {
		t.Error("no sign-out button")
	}
}

func TestImagesLiveSearchAndPaging(t *testing.T) {
	env := newTestEnv(t)
	for i := 1; i <= 45; i++ {
		env.mustCreateImage(testImage(fmt.Sprintf("image-%02d", i)))
	}
	env.mustCreateImage(&store.Image{DisplayName: "pytorch", Type: store.TypeGPU, URL: "docker.io/pytorch/pytorch:2.3", Global: true,
		Description: "Deep learning"})
	admin := env.signIn("admin")

	res := admin.htmx(http.MethodGet, "/admin/images?q=learn", nil)
	body := readAll(t, res.Body)
	if !strings.HasPrefix(strings.TrimSpace(body), `<div id="images-table"`) || strings.Contains(body, "<html") {
		t.Fatalf("live search did not answer the table fragment alone: %.200s", body)
	}
	doc := parseHTML(t, body)
	if n := doc.Find("tbody tr").Length(); n != 1 || doc.Find("#image-pytorch").Length() != 1 {
		t.Errorf("search for 'learn' gave %d rows, want pytorch only", n)
	}

	doc, _ = admin.getPage("/admin/images")
	if n := doc.Find("#images-table tbody tr").Length(); n != 20 {
		t.Errorf("page 1 has %d rows, want 20", n)
	}
	links := doc.Find(".pager a.page")
	if links.Length() != 2 || doc.Find(".pager .current").Text() != "1" {
		t.Errorf("pager: %d links, current %q; want links to 2 and 3", links.Length(), doc.Find(".pager .current").Text())
	}
	if a := links.Last(); a.AttrOr("data-hx-get", "") != "/admin/images?page=3" || a.AttrOr("data-hx-target", "") != "#images-table" {
		t.Errorf("last page link: data-hx-get=%q data-hx-target=%q", a.AttrOr("data-hx-get", ""), a.AttrOr("data-hx-target", ""))
	}
	res = admin.htmx(http.MethodGet, "/admin/images?page=3", nil)
	doc = parseHTML(t, readAll(t, res.Body))
	if n := doc.Find("tbody tr").Length(); n != 6 {
		t.Errorf("page 3 has %d rows, want 6", n)
	}
	if got := doc.Find(".pager .muted").Text(); got != "41–46 of 46" {
		t.Errorf("page 3 says %q, want 41–46 of 46", got)
	}
	doc, _ = admin.getPage("/admin/images?page=99")
	if got := doc.Find(".pager .current").Text(); got != "3" {
		t.Errorf("page 99 shows page %q, want the last (3)", got)
	}
	doc, _ = admin.getPage("/admin/images?q=no-such-thing")
	if got := doc.Find("tr.empty").Text(); !strings.Contains(got, "no-such-thing") {
		t.Errorf("empty search says %q", got)
	}
}

func TestCreateImageThroughForm(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	env.mustCreateSecret("registry-a")
	admin := env.signIn("admin")
	doc, status := admin.getPage("/admin/images/new")
	if status != http.StatusOK {
		t.Fatalf("GET /admin/images/new = %d", status)
	}
	for _, sel := range []string{
		`input[name=displayName]`, `textarea[name=description]`, `input[name=type][value=cpu]`,
		`input[name=type][value=gpu]`, `input[name=type][value=universal]`, `input[name=url]`,
		`input[name=useGpuUrl]`, `input[name=urlForGpu]`, `input[name=usePullSecret]`,
		`select[name=pullSecret] option[value=registry-a]`, `input[name=global]`, `input[name=groups][value=team-a]`,
		`a[href="/admin/images/new?kind=build"]`, `button[data-hx-post="/admin/images/-/check"]`,
	} {
		if doc.Find(sel).Length() == 0 {
			t.Errorf("the add form has no %s", sel)
		}
	}
	if got := doc.Find("#displayName-help").Text(); !strings.Contains(got, "lowercase") || !strings.Contains(got, "63") {
		t.Errorf("the display name's rule is not shown: %q", got)
	}
	// The registry cannot be reached; saving must not care (it never asks).
	res := admin.postForm("/admin/images", url.Values{
		"displayName": {"my-image"}, "description": {"A test"}, "type": {"universal"},
		"url": {"registry.invalid/team/my-image:1.0"}, "useGpuUrl": {"on"}, "urlForGpu": {"registry.invalid/team/my-image:1.0-cuda"},
		"usePullSecret": {"on"}, "pullSecret": {"registry-a"}, "groups": {"team-a"},
	})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/images/my-image" {
		t.Fatalf("POST /admin/images = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if len(env.inspected) != 0 {
		t.Errorf("saving asked the registry: %v", env.inspected)
	}
	img, err := env.store.FindImage(t.Context(), "my-image")
	if err != nil {
		t.Fatal(err)
	}
	if img.URL != "registry.invalid/team/my-image:1.0" || img.URLForGPU != "registry.invalid/team/my-image:1.0-cuda" ||
		img.PullSecret != "registry-a" || img.Global || strings.Join(img.Groups, ",") != "team-a" {
		t.Errorf("stored %+v", img)
	}
	doc, _ = admin.getPage("/admin/images/my-image")
	if got := doc.Find(".flash").Text(); !strings.Contains(got, "my-image") {
		t.Errorf("no notice after adding: %q", got)
	}
	if doc.Find(".flash").Length() != 1 {
		t.Error("the notice is not shown exactly once")
	}
	doc, _ = admin.getPage("/admin/images/my-image")
	if doc.Find(".flash").Length() != 0 {
		t.Error("the notice is shown twice")
	}

	// The same display name again: a suffix is added; toggles off drop their fields.
	res = admin.postForm("/admin/images", url.Values{
		"displayName": {"my-image"}, "type": {"cpu"}, "url": {"python:3.12"},
		"useGpuUrl": {"on"}, "urlForGpu": {"nvidia/cuda"}, "pullSecret": {"registry-a"}, "global": {"on"}, "groups": {"team-a"},
	})
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/images/my-image-") || len(loc) != len("/admin/images/my-image-xxxxx") {
		t.Fatalf("second my-image: %d to %q", res.StatusCode, loc)
	}
	img, err = env.store.FindImage(t.Context(), strings.TrimPrefix(loc, "/admin/images/"))
	if err != nil {
		t.Fatal(err)
	}
	if img.URL != "docker.io/library/python:3.12" || img.URLForGPU != img.URL || img.UseGPUURL || img.PullSecret != "" || !img.Global || len(img.Groups) != 0 {
		t.Errorf("stored %+v: want a normalised URL, no GPU URL, no secret, global without groups", img)
	}
}

func TestNamePreview(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateImage(testImage("taken"))
	admin := env.signIn("admin")
	cases := []struct {
		displayName, want string
	}{
		{"fresh", "Name: fresh"},
		{"taken", "Name: taken-xxxxx"},
		{"Bad Name", "No spaces"},
		{"", "generated from the display name"},
	}
	for _, tc := range cases {
		res := admin.htmx(http.MethodGet, "/admin/images/-/name-preview?displayName="+url.QueryEscape(tc.displayName), nil)
		doc := parseHTML(t, readAll(t, res.Body))
		got := strings.Join(strings.Fields(doc.Find("#name-preview").Text()), " ")
		if res.StatusCode != http.StatusOK || !strings.Contains(got, tc.want) {
			t.Errorf("preview of %q: %d %q, want %q", tc.displayName, res.StatusCode, got, tc.want)
		}
	}
}

func TestEditImage(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	env.mustCreateImage(&store.Image{DisplayName: "python", Type: store.TypeCPU, URL: "docker.io/library/python:3.12", Global: true})
	admin := env.signIn("admin")
	doc, status := admin.getPage("/admin/images/python/edit")
	if status != http.StatusOK {
		t.Fatalf("edit form: %d", status)
	}
	if doc.Find(`form[action="/admin/images/python"]`).Length() != 1 {
		t.Error("the edit form does not post to the image")
	}
	if v := doc.Find("#url").AttrOr("value", ""); v != "docker.io/library/python:3.12" {
		t.Errorf("url prefilled as %q", v)
	}
	if _, ro := doc.Find("#name").Attr("readonly"); !ro || doc.Find("input[name=name]").Length() != 0 {
		t.Error("the name is not shown read-only")
	}
	if doc.Find(`input[name=type][value=cpu]`).AttrOr("checked", "none") == "none" {
		t.Error("the type is not prefilled")
	}
	res := admin.postForm("/admin/images/python", url.Values{"displayName": {"Python"}, "type": {"cpu"}, "url": {"python:3.13"}, "global": {"on"}})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad edit: %d, want 422", res.StatusCode)
	}
	res = admin.postForm("/admin/images/python", url.Values{
		"displayName": {"python3"}, "description": {"Python 3.13"}, "type": {"cpu"}, "url": {"python:3.13"}, "groups": {"team-a"},
	})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d, want 303", res.StatusCode)
	}
	img, err := env.store.FindImage(t.Context(), "python")
	if err != nil {
		t.Fatal(err)
	}
	if img.DisplayName != "python3" || img.URL != "docker.io/library/python:3.13" || img.Global || strings.Join(img.Groups, ",") != "team-a" {
		t.Errorf("after edit: %+v", img)
	}
	if _, status := admin.getPage("/admin/images/nope/edit"); status != http.StatusNotFound {
		t.Errorf("edit of an unknown image: %d, want 404", status)
	}
}

func TestImageGroupsAndPage(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	env.mustCreateGroup("team-b")
	env.mustCreateImage(testImage("python"))
	admin := env.signIn("admin")
	doc, _ := admin.getPage("/admin/images/python/groups")
	if doc.Find(`input[name=global][checked]`).Length() != 1 || doc.Find(`input[name=groups]`).Length() != 2 {
		t.Error("Edit Groups does not show Global on and both groups")
	}
	res := admin.postForm("/admin/images/python/groups", url.Values{"groups": {"team-b"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("Edit Groups: %d", res.StatusCode)
	}
	img, _ := env.store.FindImage(t.Context(), "python")
	if img.Global || strings.Join(img.Groups, ",") != "team-b" {
		t.Errorf("after Edit Groups: global=%v groups=%v", img.Global, img.Groups)
	}
	res = admin.postForm("/admin/images/python/groups", url.Values{"groups": {"team-c"}})
	doc = admin.readPage(res)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find("#groups-error").Text(), "team-c") {
		t.Errorf("unknown group: %d %q", res.StatusCode, doc.Find("#groups-error").Text())
	}
	doc, status := admin.getPage("/admin/images/python")
	if status != http.StatusOK {
		t.Fatalf("image page: %d", status)
	}
	text := strings.Join(strings.Fields(doc.Find("dl.details").Text()), " ")
	for _, want := range []string{"python", "docker.io/library/busybox:latest", "team-b", "System"} {
		if !strings.Contains(text, want) {
			t.Errorf("image page lacks %q: %s", want, text)
		}
	}
	if doc.Find(`button[data-hx-post="/admin/images/-/check"]`).Length() != 1 {
		t.Error("the image page has no Check button")
	}
	if _, status := admin.getPage("/admin/images/nope"); status != http.StatusNotFound {
		t.Errorf("unknown image page: %d, want 404", status)
	}
}

func TestDeleteImage(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateImage(testImage("one"))
	env.mustCreateImage(testImage("two"))
	admin := env.signIn("admin")
	res := admin.htmx(http.MethodDelete, "/admin/images/one", nil)
	if body := readAll(t, res.Body); res.StatusCode != http.StatusOK || body != "" {
		t.Errorf("htmx DELETE: %d %q, want 200 and nothing (the row goes)", res.StatusCode, body)
	}
	res = admin.postForm("/admin/images/two/delete", url.Values{})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/images" {
		t.Errorf("POST delete: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if n := env.imageCount(); n != 0 {
		t.Errorf("%d images left", n)
	}
	res = admin.htmx(http.MethodDelete, "/admin/images/one", nil)
	if body := readAll(t, res.Body); res.StatusCode != http.StatusNotFound || !strings.Contains(body, `class="flash error"`) {
		t.Errorf("deleting a deleted image: %d %q, want 404 with a message fragment", res.StatusCode, body)
	}
}

func TestCheckImage(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateSecret("registry-a")
	admin := env.signIn("admin")
	check := func(form url.Values) (int, string) {
		res := admin.htmx(http.MethodPost, "/admin/images/-/check", form)
		doc := parseHTML(t, readAll(t, res.Body))
		return res.StatusCode, strings.Join(strings.Fields(doc.Text()), " ")
	}
	status, text := check(url.Values{"url": {"busybox"}})
	if status != http.StatusOK || !strings.Contains(text, "sha256:abab") || !strings.Contains(text, "linux/arm64") || !strings.Contains(text, "123.5 MB") {
		t.Errorf("check busybox: %d %q", status, text)
	}
	if got := env.inspected[len(env.inspected)-1]; got != "docker.io/library/busybox:latest" {
		t.Errorf("inspected %q, want the normalised reference", got)
	}
	status, text = check(url.Values{"url": {"registry.invalid/x"}})
	if status != http.StatusOK || !strings.Contains(text, "no such host") || !strings.Contains(text, "can still be saved") {
		t.Errorf("unreachable registry: %d %q", status, text)
	}
	status, text = check(url.Values{"url": {"Not A Reference"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(text, "spaces") {
		t.Errorf("malformed: %d %q", status, text)
	}
	status, text = check(url.Values{"url": {"registry.example.com/private/app"}})
	if !strings.Contains(text, "unauthorized") {
		t.Errorf("private image without secret: %d %q", status, text)
	}
	status, text = check(url.Values{"url": {"registry.example.com/private/app"}, "usePullSecret": {"on"}, "pullSecret": {"registry-a"}})
	if status != http.StatusOK || !strings.Contains(text, "Found") {
		t.Errorf("private image with its secret: %d %q", status, text)
	}
	status, text = check(url.Values{"which": {"urlForGpu"}, "url": {"busybox"}, "urlForGpu": {"nvidia/cuda:12.4.0-base-ubuntu22.04"}})
	if got := env.inspected[len(env.inspected)-1]; status != http.StatusOK || got != "docker.io/nvidia/cuda:12.4.0-base-ubuntu22.04" {
		t.Errorf("GPU URL check asked about %q (%d %q)", got, status, text)
	}
	if n := env.imageCount(); n != 0 {
		t.Errorf("Check stored %d images", n)
	}
}

func TestKindChoice(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	doc, _ := admin.getPage("/admin/images/new?kind=build")
	if doc.Find("#recipe #baseImage").Length() != 1 || doc.Find(`input[name=kind][value=build]`).Length() != 1 || doc.Find("#url").Length() != 0 {
		t.Error("the build form lacks the recipe or the kind field, or shows a URL field")
	}
	if doc.Find(`a.kind.selected[href="/admin/images/new?kind=build"]`).Length() != 1 {
		t.Error("Build custom image is not shown as chosen")
	}
	doc, _ = admin.getPage("/admin/images/new")
	if doc.Find("#recipe").Length() != 0 || doc.Find(`a.kind.selected[href="/admin/images/new"]`).Length() != 1 {
		t.Error("the existing-image form shows the recipe or the wrong choice")
	}
}

func TestPullSecretToggleNeedsASecret(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateSecret("registry-a")
	admin := env.signIn("admin")
	res := admin.postForm("/admin/images", url.Values{
		"displayName": {"my-image"}, "type": {"cpu"}, "url": {"python"}, "global": {"on"}, "usePullSecret": {"on"},
	})
	doc := admin.readPage(res)
	if got := doc.Find("#pullSecret-error").Text(); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(got, "Choose a secret") {
		t.Errorf("pull secret on, none chosen: %d %q", res.StatusCode, got)
	}
	if n := env.imageCount(); n != 0 {
		t.Errorf("%d images stored", n)
	}
}

func TestDeleteFromImagePage(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateImage(testImage("one"))
	admin := env.signIn("admin")
	doc, _ := admin.getPage("/admin/images/one")
	btn := doc.Find(`button[data-hx-post="/admin/images/one/delete"]`)
	if btn.Length() != 1 || btn.AttrOr("data-hx-confirm", "") == "" {
		t.Fatal("the image page has no confirmed delete button")
	}
	res := admin.htmx(http.MethodPost, "/admin/images/one/delete", url.Values{})
	if res.StatusCode != http.StatusOK || res.Header.Get("HX-Redirect") != "/admin/images" {
		t.Errorf("htmx delete from the page: %d HX-Redirect=%q", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
	doc, _ = admin.getPage("/admin/images")
	if got := doc.Find(".flash").Text(); !strings.Contains(got, "deleted") {
		t.Errorf("notice after deleting: %q", got)
	}
}
