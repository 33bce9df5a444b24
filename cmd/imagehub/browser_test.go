package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Debian chromium with a fresh profile that
// accepts confirm dialogs. Outside CI a missing chromium skips the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s is missing (run .ci/install.sh); skipped outside CI", chromiumPath)
		}
		t.Fatalf("%s is missing in CI: %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// TestBrowserBuild starts a build from the form, watches its log lines
// arrive live, sees the table's warning mark clear without a reload when
// the build succeeds, and cancels a second build from its page.
func TestBrowserBuild(t *testing.T) {
	needRoot(t)
	s := startServer(t, "", nil)
	base := pushBase(t, s)
	ctx := newBrowser(t)
	url := "http://" + s.addr

	step := func(name string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			path := filepath.Join(t.ArtifactDir(), "failure.png")
			os.WriteFile(path, shot, 0o644)
			t.Fatalf("%s: %v (screenshot %s)\nserver:\n%s", name, err, path, s.out)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	// waitFor polls the page until cond holds, without reloading it.
	waitFor := func(what string, timeout time.Duration, cond string) {
		t.Helper()
		step(what, timeout, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	}
	buildForm := func(name, apt string) {
		t.Helper()
		step("fill the build form for "+name, 30*time.Second,
			chromedp.Navigate(url+"/admin/images/new?kind=build"),
			chromedp.WaitVisible(chromedp.ID("baseImage")),
			chromedp.SendKeys(chromedp.ID("displayName"), name),
			chromedp.SendKeys(chromedp.ID("baseImage"), base),
			chromedp.SendKeys(chromedp.ID("apt"), apt),
			chromedp.SendKeys(chromedp.ID("pip"), "numpy>=1.2"),
			chromedp.Click(chromedp.ID("global")),
			chromedp.Click(chromedp.ID("save-image")),
			chromedp.WaitVisible(chromedp.ID("build-log")),
		)
	}

	step("sign in", 30*time.Second,
		chromedp.Navigate(url+"/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "e2e-admin-password"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("add-image")),
	)

	buildForm("browser-build", "napping")
	waitFor("log lines arrive live", time.Minute, `document.getElementById("build-log").textContent.includes("napping 2")`)
	if got := text("#build-log"); strings.Contains(got, "napping 6") {
		t.Errorf("the whole log was there at once; want lines arriving live:\n%s", got)
	}
	step("open the images table while it builds: its mark says the step", 15*time.Second,
		chromedp.Navigate(url+"/admin/images"),
		chromedp.WaitVisible(chromedp.CSS("#image-browser-build .building-mark")),
		chromedp.Poll[chromedp.Void](`/^building \d+\/\d+$/.test(document.querySelector("#image-browser-build .building-mark .muted").textContent)`),
	)
	waitFor("the warning mark clears without a reload", time.Minute,
		`document.querySelector("#image-browser-build") && !document.querySelector("#image-browser-build .warn")`)

	var img apiImage
	s.api("GET", "/images/browser-build", nil, &img)
	if !img.Ready || img.LatestBuild == nil || img.LatestBuild.Status != "succeeded" {
		t.Fatalf("after the build: %+v", img)
	}
	step("Check asks the real registry", 30*time.Second,
		chromedp.Navigate(url+"/admin/images/browser-build"),
		chromedp.Click(chromedp.ID("check-url")),
		chromedp.WaitVisible(chromedp.CSS("#check-result .check-result.ok")),
	)
	if got := text("#check-result"); !strings.Contains(got, img.LatestBuild.Digest) || !strings.Contains(got, "linux/amd64") {
		t.Errorf("Check shows %q, want digest %s and linux/amd64", got, img.LatestBuild.Digest)
	}

	buildForm("browser-cancel", "sleepy")
	waitFor("the long step starts", time.Minute, `document.getElementById("build-log").textContent.includes("sleeping now")`)
	// FROM, USER root, then the apt step: its bar, polled, says so.
	waitFor("the progress bar shows the apt step", 15*time.Second,
		`document.getElementById("build-progress-bar") !== null && document.querySelector("label[for=build-progress-bar]").textContent.startsWith("Step 3 of ")`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		os.WriteFile(filepath.Join(t.ArtifactDir(), "build-page.png"), shot, 0o644)
		if d := os.Getenv("IMAGEHUB_SCREENSHOT_DIR"); d != "" {
			os.WriteFile(filepath.Join(d, "build-page.png"), shot, 0o644)
		}
	}
	start := time.Now()
	step("cancel it", 10*time.Second, chromedp.Click(chromedp.ID("cancel-build")))
	// The page reloads after the cancel: ask again until the new page says so.
	status := ""
	for time.Since(start) < 15*time.Second && !strings.Contains(status, "Cancelled") {
		time.Sleep(250 * time.Millisecond)
		status, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("build-status")))
	}
	if !strings.Contains(status, "Cancelled") {
		t.Fatalf("build status after Cancel Build: %q", status)
	}
	if got := text("#build-log"); !strings.Contains(got, "cancelled") {
		t.Errorf("the log of the cancelled build does not say so:\n%s", got)
	}
}

// TestBrowserGroupAdminBuild: a group admin builds their group's own image
// for real from /groups/{g}/images, is refused the admin pages, and a member
// of the group then finds the image in their selection beside a System image
// marked with the "i" hint.
func TestBrowserGroupAdminBuild(t *testing.T) {
	needRoot(t)
	s := startServer(t, "", nil)
	base := pushBase(t, s)
	for _, call := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/groups", map[string]string{"name": "team"}},
		{"POST", "/users", map[string]any{"username": "lead", "password": "lead-password"}},
		{"PUT", "/groups/team/members/lead", map[string]string{"role": "admin"}},
		{"POST", "/users", map[string]any{"username": "member", "password": "member-password"}},
		{"PUT", "/groups/team/members/member", map[string]string{"role": "member"}},
		{"POST", "/images", map[string]any{"displayName": "busybox-base", "type": "cpu", "url": base, "global": true}},
	} {
		var out map[string]any
		if code := s.api(call.method, call.path, call.body, &out); code >= 300 {
			t.Fatalf("%s %s: %d %v", call.method, call.path, code, out)
		}
	}
	ctx := newBrowser(t)
	url := "http://" + s.addr
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			path := filepath.Join(t.ArtifactDir(), "failure.png")
			os.WriteFile(path, shot, 0o644)
			t.Fatalf("%s: %v (screenshot %s)", name, err, path)
		}
	}
	signIn := func(user, password string) {
		t.Helper()
		step("sign in as "+user,
			chromedp.Navigate(url+"/login"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"]`)),
		)
	}

	signIn("lead", "lead-password")
	step("build a group image",
		chromedp.Navigate(url+"/groups/team/images/new?kind=build"),
		chromedp.WaitVisible(chromedp.ID("baseImage")),
		chromedp.SendKeys(chromedp.ID("displayName"), "team-image"),
		chromedp.SendKeys(chromedp.ID("baseImage"), base),
		chromedp.SendKeys(chromedp.ID("apt"), "curl"),
		chromedp.Click(chromedp.ID("save-image")),
		chromedp.WaitVisible(chromedp.ID("build-log")),
	)
	var img apiImage
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if s.api("GET", "/images/team-image", nil, &img); img.Ready {
			break
		}
	}
	if !img.Ready || img.LatestBuild == nil || img.LatestBuild.Status != "succeeded" {
		t.Fatalf("the group image did not build: %+v", img)
	}
	status := ""
	for start := time.Now(); time.Since(start) < 15*time.Second && !strings.Contains(status, "Succeeded"); time.Sleep(250 * time.Millisecond) {
		status, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("build-status")))
	}
	if !strings.Contains(status, "Succeeded") {
		t.Errorf("the group admin's build page shows %q, want Succeeded", status)
	}
	step("an admin page is refused", chromedp.Navigate(url+"/admin/images"))
	if body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(body, "Forbidden") {
		t.Errorf("a group admin opened /admin/images: %q", body)
	}
	step("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.ID("username")))

	signIn("member", "member-password")
	step("the member's selection", chromedp.Navigate(url+"/images"), chromedp.WaitVisible(chromedp.ID("image-team-image")))
	own, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("image-team-image")))
	sys, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.ID("image-busybox-base")))
	if strings.Contains(own, "System") || !strings.Contains(sys, `title="System image"`) {
		t.Errorf("selection rows: own %q, system %q; want the i hint on the System image only", own, sys)
	}
}
