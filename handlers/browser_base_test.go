package handlers

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"imagehub/store"
)

// TestBrowserBaseUpdate drives the base update as an administrator would:
// the base's tag moves in the registry, Check base on the image page shows
// the update, the images table marks the image, and the page's one button
// queues a rebuild of the same recipe and opens its build page.
func TestBrowserBaseUpdate(t *testing.T) {
	w := newBaseWorld(t)
	name := w.builtImage(t, "app", store.OwnerSystem)
	ctx := newBrowser(t)
	base := w.http.URL
	step := browserStep(t, ctx)

	step("sign in on the image page",
		chromedp.Navigate(base+"/admin/images/"+name),
		chromedp.WaitVisible(chromedp.ID("username")),
		loaded(),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), testAdminPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("check-base")),
		loaded(),
	)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#base-update').length`)); err != nil || n != 0 {
		t.Fatalf("an update shown before the base moved: %d, %v", n, err)
	}
	moved := w.moveBase(t, "second")
	step("check the base",
		chromedp.Click(chromedp.ID("check-base")),
		chromedp.WaitVisible(chromedp.ID("base-update")),
		loaded(),
	)
	notice, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("base-update")))
	if err != nil || !strings.Contains(notice, moved) {
		t.Errorf("the notice says %q (%v), want the new digest %s", notice, err, moved)
	}
	step("the table marks the image, and its mark leads to it",
		chromedp.Navigate(base+"/admin/images"),
		chromedp.WaitVisible(chromedp.CSS("#image-"+name+" .base-update-mark")),
		loaded(),
		chromedp.Click(chromedp.CSS("#image-"+name+" .base-update-mark")),
		chromedp.WaitVisible(chromedp.ID("rebuild-on-new-base")),
		loaded(),
	)
	step("one click rebuilds",
		chromedp.Click(chromedp.ID("rebuild-on-new-base")),
		chromedp.WaitVisible(chromedp.ID("build-log")),
	)
	active, err := w.store.ActiveBuilds(context.Background(), name)
	if err != nil || active[name] == nil || active[name].Recipe != w.recipe() {
		t.Fatalf("the click queued %+v, %v; want a build of the same recipe", active[name], err)
	}
	url, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(url, "/admin/builds/"+strconv.FormatInt(active[name].ID, 10)) {
		t.Errorf("the click led to %q (%v), want the build's page", url, err)
	}
}
