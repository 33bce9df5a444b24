package handlers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"imagehub/store"
)

// chromiumPath is Debian's chromium, which the browser test drives.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless chromium with a fresh profile, for at most
// five minutes. The test is skipped with -short (make unit), and when
// chromium is missing, except in CI, where it must run.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("the browser test is skipped with -short")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s is missing (run .ci/install.sh); skipped outside CI", chromiumPath)
		}
		t.Fatalf("%s is missing in CI: %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	// data-hx-confirm asks with window.confirm: say yes.
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

// browserStep returns the step of a browser test: it runs actions on the
// browser ctx for at most 15 s, and on failure keeps a full screenshot of
// the page as failure.png in the test's artifact folder (taken on ctx, not
// on the step's expired one) and stops the test with the step's name, the
// error and where the screenshot is.
func browserStep(t *testing.T, ctx context.Context) func(name string, actions ...chromedp.Action[chromedp.Void]) {
	return func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			path := filepath.Join(t.ArtifactDir(), "failure.png")
			os.WriteFile(path, shot, 0o644)
			t.Fatalf("%s: %v (screenshot %s)", name, err, path)
		}
	}
}

// TestBrowserImageLifecycle drives the pages as an administrator would: sign
// in, add an image with a bad display name and see the error at the field,
// fix it, find it with live search, edit it, restrict it to a group, take the
// README's screenshot, and delete it after the confirm dialog. axe-core
// checks each page on the way (TestBrowserEveryPage checks every page).
func TestBrowserImageLifecycle(t *testing.T) {
	env := newTestEnv(t)
	ctx := newBrowser(t)
	env.mustCreateGroup("data-science")
	env.mustCreateGroup("ml-platform")
	env.mustCreateImage(&store.Image{DisplayName: "jupyter-base", Type: store.TypeCPU, URL: "docker.io/jupyter/base-notebook:2024-05-27",
		Description: "Minimal Jupyter notebook with Python 3.11.", Global: true})
	env.mustCreateImage(&store.Image{DisplayName: "pytorch-cuda", Type: store.TypeGPU, URL: "docker.io/pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",
		Description: "PyTorch 2.3 with CUDA 12.1 for GPU training.", Groups: []string{"ml-platform"}})
	env.mustCreateImage(&store.Image{DisplayName: "tensorflow", Type: store.TypeUniversal, URL: "docker.io/tensorflow/tensorflow:2.16.1",
		UseGPUURL: true, URLForGPU: "docker.io/tensorflow/tensorflow:2.16.1-gpu", Description: "TensorFlow 2.16, CPU and GPU variants.", Global: true})
	env.mustCreateImage(&store.Image{DisplayName: "r-studio", Type: store.TypeCPU, Description: "Custom R image with tidyverse; first build pending.",
		Recipe: &store.Recipe{BaseImage: "docker.io/rocker/rstudio:4.4", Apt: "libxml2-dev"}, Groups: []string{"data-science"}})
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

	step("sign in",
		chromedp.Navigate(base+"/admin/images"),
		chromedp.WaitVisible(chromedp.ID("username")),
		loaded(),
	)
	checkAccessibility(t, ctx, "sign-in")
	step("sign in",
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), testAdminPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("add-image")),
		loaded(),
	)
	checkAccessibility(t, ctx, "images")

	step("add with a bad display name",
		chromedp.Click(chromedp.ID("add-image")),
		chromedp.WaitVisible(chromedp.ID("displayName")),
		loaded(),
	)
	checkAccessibility(t, ctx, "add an image")
	step("add with a bad display name",
		chromedp.SendKeys(chromedp.ID("displayName"), "My Image"),
		chromedp.Poll[chromedp.Void](`document.querySelector('#name-preview').textContent.includes('No spaces')`),
		chromedp.SendKeys(chromedp.ID("url"), "python:3.12"),
		chromedp.SendKeys(chromedp.ID("description"), `Team notebook <script>alert("x")</script>`),
		chromedp.Click(chromedp.ID("save-image")),
		chromedp.WaitVisible(chromedp.ID("displayName-error")),
		loaded(),
	)
	checkAccessibility(t, ctx, "add an image, with errors")
	if got := text("#displayName-error"); !strings.Contains(got, "No spaces") {
		t.Fatalf("error at the display name: %q", got)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("url"))); v != "python:3.12" {
		t.Errorf("the URL was not kept: %q", v)
	}
	if n := env.imageCount(); n != 4 {
		t.Fatalf("%d images after a refused add, want 4", n)
	}

	step("fix the display name and save",
		clearField("displayName"),
		chromedp.SendKeys(chromedp.ID("displayName"), "my-image"),
		chromedp.Poll[chromedp.Void](`document.querySelector('#name-preview code')?.textContent === 'my-image'`),
		chromedp.Click(chromedp.ID("global")),
		chromedp.Click(chromedp.ID("save-image")),
		chromedp.WaitVisible(chromedp.ID("edit-image")),
		loaded(),
	)
	checkAccessibility(t, ctx, "image")
	if img, err := env.store.FindImage(ctx, "my-image"); err != nil || !img.Global {
		t.Fatalf("after adding: %+v, %v; want a global image", img, err)
	}
	if got := text(".flash"); !strings.Contains(got, "my-image") {
		t.Errorf("notice after adding: %q", got)
	}
	if got := text("dl.details"); !strings.Contains(got, "docker.io/library/python:3.12") || !strings.Contains(got, `<script>alert("x")</script>`) {
		t.Errorf("image page: %q (want the normalised URL and the description as text)", got)
	}

	step("find it with live search",
		chromedp.Navigate(base+"/admin/images"),
		chromedp.WaitVisible(chromedp.ID("image-search")),
		loaded(),
		chromedp.SendKeys(chromedp.ID("image-search"), "my-im"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#images-table tbody tr').length === 1 && !!document.querySelector('#image-my-image')`),
	)
	checkAccessibility(t, ctx, "images, searched")
	if u, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.search`)); u != "?q=my-im" {
		t.Errorf("the search is not in the address: %q", u)
	}

	step("edit it",
		chromedp.Click(chromedp.CSS(`#image-my-image a[title=Edit]`)),
		chromedp.WaitVisible(chromedp.ID("description")),
		loaded(),
	)
	checkAccessibility(t, ctx, "edit an image")
	step("edit it",
		clearField("description"),
		chromedp.SendKeys(chromedp.ID("description"), "Python 3.12 for the team"),
		chromedp.Click(chromedp.CSS(`input[name=type][value=universal]`)),
		chromedp.Click(chromedp.ID("useGpuUrl")),
		chromedp.WaitVisible(chromedp.ID("urlForGpu")),
		clearField("urlForGpu"),
		chromedp.SendKeys(chromedp.ID("urlForGpu"), "nvidia/cuda:12.4.1-runtime-ubuntu22.04"),
		chromedp.Click(chromedp.ID("save-image")),
		chromedp.WaitVisible(chromedp.ID("edit-groups")),
		loaded(),
	)
	img, err := env.store.FindImage(ctx, "my-image")
	if err != nil {
		t.Fatal(err)
	}
	if img.Description != "Python 3.12 for the team" || img.Type != store.TypeUniversal || img.URLForGPU != "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04" {
		t.Errorf("after edit: %+v", img)
	}

	step("restrict it to a group",
		chromedp.Click(chromedp.ID("edit-groups")),
		chromedp.WaitVisible(chromedp.ID("global")),
		loaded(),
	)
	checkAccessibility(t, ctx, "edit groups")
	step("restrict it to a group",
		chromedp.Click(chromedp.ID("global")),
		chromedp.WaitVisible(chromedp.CSS(`input[name=groups][value=data-science]`)),
		chromedp.Click(chromedp.CSS(`input[name=groups][value=data-science]`)),
		chromedp.Click(chromedp.ID("save-groups")),
		chromedp.WaitVisible(chromedp.ID("edit-image")),
		loaded(),
	)
	if img, _ := env.store.FindImage(ctx, "my-image"); img.Global || strings.Join(img.Groups, ",") != "data-science" {
		t.Errorf("after Edit Groups: global=%v groups=%v", img.Global, img.Groups)
	}

	step("open the table",
		chromedp.Navigate(base+"/admin/images"),
		chromedp.WaitVisible(chromedp.ID("image-my-image")),
		loaded(),
	)
	checkAccessibility(t, ctx, "images with a new image")
	saveScreenshot(t, ctx)

	step("delete it",
		chromedp.Click(chromedp.CSS(`#image-my-image button[title=Delete]`)),
		chromedp.WaitNotPresent(chromedp.ID("image-my-image")),
	)
	if _, err := env.store.FindImage(ctx, "my-image"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("the image is still stored: %v", err)
	}
	if n := env.imageCount(); n != 4 {
		t.Errorf("%d images at the end, want 4", n)
	}
}

// saveScreenshot keeps a picture of the images table: always in the test's
// artifact folder (a temporary one unless go test -artifacts is given), and
// as images-table.png in $IMAGEHUB_SCREENSHOT_DIR when that is set (the
// README shows docs/images-table.png).
func saveScreenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("IMAGEHUB_SCREENSHOT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		path := filepath.Join(d, "images-table.png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
}

// clearField empties a form field by script. (SetValue with "" reports a
// failure in this chromedp version, as the empty result reads as no result.)
func clearField(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.getElementById('` + id + `').value = ''`)
}

// loaded waits until the page has loaded with its style sheet and scripts, so
// that a click lands where the element is finally laid out.
func loaded() chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](`document.readyState === 'complete' && !!window.htmx`)
}
