package handlers

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"imagehub/store"
)

// TestBrowserPackagesAndCompare drives the package pages as an
// administrator would: a rebuild's page says what changed since the
// previous build, its Packages section filters as one types and by
// manager, and the image page compares two builds chosen in its selects.
func TestBrowserPackagesAndCompare(t *testing.T) {
	env := newTestEnv(t)
	ctx := newBrowser(t)
	image, first, second := env.listedImage("listed", store.OwnerSystem)
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
	rows := `document.querySelectorAll('#packages-table tbody tr:not(.empty)').length`

	step("sign in and open the rebuild",
		chromedp.Navigate(fmt.Sprintf("%s/admin/builds/%d", base, second)),
		chromedp.WaitVisible(chromedp.ID("username")),
		loaded(),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), testAdminPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("packages")),
		loaded(),
		chromedp.Poll[chromedp.Void](rows+` === 5`),
	)
	if got := text("#diff-summary"); got != "+2 added, 1 removed, 1 changed" {
		t.Errorf("the rebuild's changes: %q", got)
	}
	if got := text("#package-counts"); got != "3 apt · 1 pip · 1 conda" {
		t.Errorf("counts: %q", got)
	}

	step("search the packages as one types",
		chromedp.SendKeys(chromedp.ID("package-search"), "jq"),
		chromedp.Poll[chromedp.Void](rows+` === 2`),
	)
	step("and by manager",
		chromedp.SetValue(chromedp.ID("package-manager"), "pip"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('package-manager').dispatchEvent(new Event('change', {bubbles: true}))`),
		chromedp.Poll[chromedp.Void](`document.querySelector('#packages-table tbody tr.empty') !== null`),
		clearField("package-search"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('package-search').dispatchEvent(new Event('search', {bubbles: true}))`),
		chromedp.Poll[chromedp.Void](rows+` === 1 && document.querySelector('#packages-table tbody').textContent.includes('numpy')`),
	)

	step("compare the builds the other way round",
		chromedp.Navigate(base+"/admin/images/"+image),
		chromedp.WaitVisible(chromedp.ID("compare")),
		loaded(),
		chromedp.SetValue(chromedp.ID("compare-from"), fmt.Sprint(second)),
		chromedp.SetValue(chromedp.ID("compare-to"), fmt.Sprint(first)),
		chromedp.Click(chromedp.ID("compare-builds")),
		chromedp.WaitVisible(chromedp.ID("compare-result")),
		loaded(),
	)
	if got := text("#compare-result #diff-summary"); got != "+1 added, 2 removed, 1 changed" {
		t.Errorf("compared from %d to %d: %q", second, first, got)
	}
	if got := text("#diff-removed"); !strings.Contains(got, "hello") || !strings.Contains(got, "python") {
		t.Errorf("removed: %q, want hello and python", got)
	}
}
