package handlers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"imagehub/store"
)

// TestBrowserProgressBarMoves watches a running build's page: its bar
// moves when the worker begins the next step, with the step in its label
// and the time left beside it, and goes once the build has ended (the page
// reloads).
func TestBrowserProgressBarMoves(t *testing.T) {
	env := newTestEnv(t)
	ctx := newBrowser(t)
	_, id := env.progressImage("torch", store.OwnerSystem)
	step := browserStep(t, ctx)
	bar := `document.getElementById('build-progress-bar')`
	label := `document.querySelector('label[for=build-progress-bar]').textContent`
	eta := `document.getElementById('build-eta').textContent`

	step("sign in and open the running build",
		chromedp.Navigate(fmt.Sprintf("%s/admin/builds/%d", env.http.URL, id)),
		chromedp.WaitVisible(chromedp.ID("username")),
		loaded(),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), testAdminPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("build-progress-bar")),
		loaded(),
		chromedp.Poll[chromedp.Void](bar+`.value === 1 && `+bar+`.max === 4 && `+label+` === 'Step 2 of 4' && /^About \d+ s left\.$/.test(`+eta+`)`),
	)
	if err := env.store.RecordBuildStep(context.Background(), id, 3, 4, time.Now()); err != nil {
		t.Fatal(err)
	}
	step("the bar moves to step 3",
		chromedp.Poll[chromedp.Void](bar+`.value === 2 && `+label+` === 'Step 3 of 4' && /^About \d+ s left\.$/.test(`+eta+`)`),
	)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](eta))
	var left int
	if _, scanErr := fmt.Sscanf(got, "About %d s left.", &left); err != nil || scanErr != nil || left < 14 || left > 20 {
		t.Errorf("early in step 3, the time left: %q, %v; want about 20 s (10 for step 3, 10 for step 4)", got, err)
	}

	if err := env.store.SucceedBuild(context.Background(), id, "sha256:"+strings.Repeat("ef", 32), nil); err != nil {
		t.Fatal(err)
	}
	if err := env.server.logs.Close(id, store.BuildSucceeded); err != nil {
		t.Fatal(err)
	}
	step("the page reloads once the build has ended",
		chromedp.WaitVisible(chromedp.ID("edit-rebuild")),
		loaded(),
	)
	if gone, err := chromedp.Run(ctx, chromedp.Evaluate[bool](bar+` === null`)); err != nil || !gone {
		t.Errorf("the ended build's page still has its bar (%v)", err)
	}
}
