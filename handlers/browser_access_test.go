package handlers

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserGroupAdminAndUser drives the pages as the people of a group
// would: a group admin adds an existing image to their group and starts a
// custom build (recorded as queued: this test server runs no build worker);
// a member sees their selection with the System hint; and the member is
// refused an administrator's page. axe-core checks each page on the way.
func TestBrowserGroupAdminAndUser(t *testing.T) {
	env := newGroupEnv(t)
	ctx := newBrowser(t)
	base := env.http.URL
	step := browserStep(t, ctx)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ")
	}
	signIn := func(user string) {
		t.Helper()
		step("sign in as "+user,
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible(chromedp.ID("username")),
			loaded(),
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), testAdminPassword),
			chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`nav.mainnav`)),
			loaded(),
		)
	}
	// checked runs axe-core on the page reached by the last step.
	checked := func(pageName string) { t.Helper(); checkAccessibility(t, ctx, pageName) }

	signIn("gina")
	step("open the group's images from the navigation",
		chromedp.Click(chromedp.CSS(`nav.mainnav a[href="/groups/team-g/images"]`)),
		chromedp.WaitVisible(chromedp.ID("add-image")),
		loaded(),
	)
	checked("group's images")
	step("add an existing image to the group",
		chromedp.Click(chromedp.ID("add-image")),
		chromedp.WaitVisible(chromedp.ID("displayName")),
		loaded(),
	)
	checked("group: add an image")
	step("add an existing image to the group",
		chromedp.SendKeys(chromedp.ID("displayName"), "team-notebook"),
		chromedp.Poll[chromedp.Void](`document.querySelector('#name-preview code')?.textContent === 'team-notebook'`),
		chromedp.SendKeys(chromedp.ID("url"), "jupyter/scipy-notebook:2024-05-27"),
		chromedp.SendKeys(chromedp.ID("description"), "SciPy notebook for team-g"),
		chromedp.Click(chromedp.ID("save-image")),
		chromedp.WaitVisible(chromedp.ID("edit-image")),
		loaded(),
	)
	checked("group: image")
	if u, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`)); u != "/groups/team-g/images/team-notebook" {
		t.Errorf("after adding: at %q", u)
	}
	img, err := env.store.FindImage(ctx, "team-notebook")
	if err != nil || img.Owner != "team-g" || img.Global || img.URL != "docker.io/jupyter/scipy-notebook:2024-05-27" {
		t.Fatalf("stored: %+v %v", img, err)
	}
	step("start a custom build",
		chromedp.Navigate(base+"/groups/team-g/images/new?kind=build"),
		chromedp.WaitVisible(chromedp.ID("baseImage")),
		loaded(),
	)
	checked("group: add a custom image")
	step("start a custom build",
		chromedp.SendKeys(chromedp.ID("displayName"), "team-custom"),
		chromedp.SendKeys(chromedp.ID("baseImage"), "docker.io/jupyter/base-notebook:2024-05-27"),
		chromedp.SendKeys(chromedp.ID("pip"), "numpy>=1.26\npandas"),
		chromedp.Click(chromedp.ID("save-image")),
		chromedp.WaitVisible(chromedp.ID("build-status")),
		loaded(),
	)
	checked("group: build queued")
	if got := text("#build-status"); got != "Queued" {
		t.Errorf("build status %q, want Queued", got)
	}
	if u, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`)); !strings.HasPrefix(u, "/groups/team-g/builds/") {
		t.Errorf("the build page is at %q", u)
	}
	if bs, err := env.store.ListBuilds(ctx, "team-custom"); err != nil || len(bs) != 1 || strings.ReplaceAll(bs[0].Recipe.Pip, "\r\n", "\n") != "numpy>=1.26\npandas" {
		t.Errorf("builds of team-custom: %+v %v", bs, err)
	}
	step("sign out",
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("username")),
	)

	signIn("alice")
	step("open my images",
		chromedp.Navigate(base+"/images"),
		chromedp.WaitVisible(chromedp.ID("image-team-notebook")),
		loaded(),
	)
	checked("my images")
	hint, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#image-sys-python .hint')?.title ?? ''`))
	if err != nil || hint != "System image" {
		t.Errorf("the System image's hint: %q %v", hint, err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#image-team-notebook .hint').length`)); n != 0 {
		t.Error("the group's own image is marked as a System image")
	}
	if got := text("#image-team-notebook"); !strings.Contains(got, "Group team-g") || !strings.Contains(got, "CPU") {
		t.Errorf("the group image's row: %q", got)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('table.selection tbody tr[id]').length`)); n != 2 {
		t.Errorf("alice sees %d images, want 2 (team-custom is not built yet, h-own is team-h's)", n)
	}
	step("open an administrator's page",
		chromedp.Navigate(base+"/admin/users"),
		chromedp.WaitVisible(chromedp.CSS(".error-page")),
		loaded(),
	)
	checked("forbidden")
	if got := text(".error-page h1"); got != "Forbidden" {
		t.Errorf("heading of the refusal: %q", got)
	}
	if got := text(".error-message"); !strings.Contains(got, "Only administrators") {
		t.Errorf("refusal message: %q", got)
	}
}
