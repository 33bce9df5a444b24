package views

import (
	"context"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"imagehub/store"
)

// renderDoc renders a component and parses it for goquery assertions.
func renderDoc(t *testing.T, c templ.Component) (*goquery.Document, string) {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return doc, b.String()
}

func adminPage(title string) Page {
	return Page{Title: title, Nav: NavImages, User: &store.User{Username: "admin", Admin: true}, CSRF: "tok-123"}
}

func TestImagesTableEscapesAndMarks(t *testing.T) {
	imgs := []*store.Image{
		{Name: "evil", DisplayName: "evil", Type: store.TypeCPU, Description: `<script>alert('x')</script>`, Global: true, Ready: true},
		{Name: "pending", DisplayName: "pending", Type: store.TypeGPU, Groups: []string{"a", "b"}},
	}
	doc, html := renderDoc(t, ImagesPage(ImagesProps{Page: adminPage("Images"), Table: ImagesTableProps{
		Images: imgs, Total: 2, PageNum: 1, PerPage: 20, CSRF: "tok-123",
	}}))
	if strings.Contains(html, "<script>alert") || !strings.Contains(html, "&lt;script&gt;") {
		t.Error("the description is not escaped")
	}
	if got := doc.Find("#image-pending .warn"); got.AttrOr("title", "") != "not ready" || got.Text() != "⚠" {
		t.Errorf("warning mark: %q title %q", got.Text(), got.AttrOr("title", ""))
	}
	if doc.Find("#image-evil .warn").Length() != 0 {
		t.Error("a ready image is marked not ready")
	}
	if got := strings.TrimSpace(doc.Find("#image-pending td.access").Text()); got != "a, b" {
		t.Errorf("access = %q, want the groups", got)
	}
	if doc.Find(`#image-evil form[action="/admin/images/evil/delete"] input[name=_csrf][value=tok-123]`).Length() != 1 {
		t.Error("the no-script delete form lacks the CSRF token")
	}
	if doc.Find(".pager a").Length() != 0 {
		t.Error("one page needs no page links")
	}
	if doc.Find(`nav.mainnav a.active[href="/admin/images"]`).Length() != 1 {
		t.Error("the Images navigation item is not marked active")
	}
}

func TestImageFormShowsFieldErrors(t *testing.T) {
	p := ImageFormProps{
		Page: adminPage("Add"),
		Kind: KindExisting,
		Values: ImageValues{
			DisplayName: "My Image", Description: `"quoted" <b>`, Type: "universal", URL: "python",
			UseGPUURL: true, URLForGPU: "cuda", UsePullSecret: true, PullSecret: "gone", Groups: []string{"team-a", "ghost"},
		},
		Errors:  map[string]string{"displayName": "No spaces: only lowercase letters, digits, '-' and '.'.", "groups": "Unknown group \"ghost\"."},
		Secrets: []*store.Secret{{Name: "registry-a", RegistryHost: "r.example.com"}},
		Groups:  []*store.Group{{Name: "team-a"}},
	}
	doc, _ := renderDoc(t, ImageForm(p))
	if got := doc.Find("#displayName-error").Text(); !strings.Contains(got, "No spaces") {
		t.Errorf("displayName error = %q", got)
	}
	if !doc.Find(`[data-field=displayName]`).HasClass("has-error") || doc.Find(`[data-field=url]`).HasClass("has-error") {
		t.Error("the wrong fields are marked")
	}
	if doc.Find(".form-errors").Length() != 1 {
		t.Error("no error summary")
	}
	checks := map[string]string{
		"#displayName":              "My Image",
		"#url":                      "python",
		"#urlForGpu":                "cuda",
		`input[name=type][checked]`: "universal",
		`select[name=pullSecret] option[selected]`: "gone",
	}
	for sel, want := range checks {
		if got := doc.Find(sel).AttrOr("value", ""); got != want {
			t.Errorf("%s value = %q, want %q", sel, got, want)
		}
	}
	if got := doc.Find("#description").Text(); got != `"quoted" <b>` {
		t.Errorf("description kept as %q", got)
	}
	for _, box := range []string{"useGpuUrl", "usePullSecret"} {
		if _, on := doc.Find("#" + box).Attr("checked"); !on {
			t.Errorf("%s is not kept on", box)
		}
	}
	if _, on := doc.Find("#global").Attr("checked"); on {
		t.Error("global is on")
	}
	var groups []string
	doc.Find(`input[name=groups][checked]`).Each(func(_ int, s *goquery.Selection) { groups = append(groups, s.AttrOr("value", "")) })
	if !reflect.DeepEqual(groups, []string{"team-a", "ghost"}) {
		t.Errorf("checked groups = %v", groups)
	}
	if got := doc.Find("#displayName").AttrOr("data-hx-get", ""); got != "/admin/images/-/name-preview" {
		t.Errorf("the display name has no live name preview: %q", got)
	}
}

func TestImageFormEditing(t *testing.T) {
	doc, _ := renderDoc(t, ImageForm(ImageFormProps{Page: adminPage("Edit"), Kind: KindExisting, Name: "python", Values: ImageValues{DisplayName: "python", Type: "cpu"}}))
	if doc.Find(`form[action="/admin/images/python"]`).Length() != 1 {
		t.Error("the edit form does not post to the image")
	}
	if doc.Find(".kind-choice").Length() != 0 || doc.Find("#name-preview").Length() != 0 {
		t.Error("editing offers the kind choice or the name preview")
	}
	if _, ok := doc.Find("#displayName").Attr("data-hx-get"); ok {
		t.Error("editing previews a name that cannot change")
	}
}

func TestPageNumbers(t *testing.T) {
	cases := []struct {
		current, count int
		want           []int
	}{
		{1, 1, []int{1}},
		{2, 5, []int{1, 2, 3, 4, 5}},
		{1, 20, []int{1, 2, 3, 0, 20}},
		{10, 20, []int{1, 0, 8, 9, 10, 11, 12, 0, 20}},
		{20, 20, []int{1, 0, 18, 19, 20}},
	}
	for _, tc := range cases {
		if got := pageNumbers(tc.current, tc.count); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("pageNumbers(%d, %d) = %v, want %v", tc.current, tc.count, got, tc.want)
		}
	}
}

// TestPageURL: the table's links carry the search, the owner filter (not
// in a group's scope) and the page as url.Values would encode them.
func TestPageURL(t *testing.T) {
	for _, sc := range []Scope{{}, GroupScope("team a")} {
		for _, q := range []string{"", "team 7", "a&b=c%"} {
			for _, owner := range []string{"", "system", "team-7"} {
				for _, page := range []int{0, 1, 2, 250} {
					v := url.Values{}
					if q != "" {
						v.Set("q", q)
					}
					if owner != "" && !sc.IsGroup() {
						v.Set("owner", owner)
					}
					if page > 1 {
						v.Set("page", strconv.Itoa(page))
					}
					want := sc.ImagesPath()
					if len(v) > 0 {
						want += "?" + v.Encode()
					}
					if got := sc.pageURL(q, owner, page); got != want {
						t.Errorf("%+v.pageURL(%q, %q, %d) = %q, want %q", sc, q, owner, page, got, want)
					}
				}
			}
		}
	}
}

func TestHumanBytes(t *testing.T) {
	cases := map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 123456789: "123.5 MB", 5_000_000_000: "5.0 GB"}
	for n, want := range cases {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCheckResult(t *testing.T) {
	doc, _ := renderDoc(t, CheckResult(CheckProps{Reference: "docker.io/library/busybox:latest", Error: `unauthorized: <b>no</b>`}))
	if got := doc.Find(".check-error").Text(); got != "unauthorized: <b>no</b>" {
		t.Errorf("error shown as %q", got)
	}
	doc, _ = renderDoc(t, CheckResult(CheckProps{Reference: "r", Digest: "sha256:1", Platforms: []string{"linux/amd64"}, Size: 2048}))
	if got := strings.Join(strings.Fields(doc.Find("dl").Text()), " "); !strings.Contains(got, "sha256:1") || !strings.Contains(got, "linux/amd64") || !strings.Contains(got, "2.0 kB") {
		t.Errorf("check result = %q", got)
	}
}

func TestSelectionHint(t *testing.T) {
	doc, _ := renderDoc(t, Selection(SelectionProps{Page: Page{Title: "My images", User: &store.User{Username: "u"}}, Images: []*store.Image{
		{Name: "sys", DisplayName: "sys", Owner: store.OwnerSystem, Type: store.TypeCPU},
		{Name: "grp", DisplayName: "grp", Owner: "team", Type: store.TypeCPU},
	}}))
	if doc.Find("#image-sys .hint[title='System image']").Length() != 1 || doc.Find("#image-grp .hint").Length() != 0 {
		t.Error("the System image hint is wrong")
	}
	var nav []string
	doc.Find("nav.mainnav a").Each(func(_ int, a *goquery.Selection) { nav = append(nav, a.AttrOr("href", "")) })
	if strings.Join(nav, " ") != "/images /account/tokens" {
		t.Errorf("a user's navigation = %v, want only My images and API tokens", nav)
	}
}

// TestDescriptionLimit: the form allows and announces the limit the store
// checks.
func TestDescriptionLimit(t *testing.T) {
	doc, _ := renderDoc(t, ImageForm(ImageFormProps{Page: adminPage("Add an image")}))
	want := strconv.Itoa(store.MaxDescriptionLen)
	field := doc.Find("textarea#description")
	if got := field.AttrOr("maxlength", ""); got != want {
		t.Errorf("maxlength = %q, want %s", got, want)
	}
	if help := field.Parent().Text(); !strings.Contains(help, "at most "+want+" characters") {
		t.Errorf("the description's help does not say %s: %q", want, strings.TrimSpace(help))
	}
}
