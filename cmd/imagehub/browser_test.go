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
	step("open the images table while it builds", 15*time.Second,
		chromedp.Navigate(url+"/admin/images"),
		chromedp.WaitVisible(chromedp.CSS("#image-browser-build .building-mark")),
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
