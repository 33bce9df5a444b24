package handlers

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserEveryPage opens every page of the web interface, as the person
// who would (everyPage), and each form sent back with its errors, and runs
// axe-core on each: no page may have a serious or critical accessibility
// fault.
func TestBrowserEveryPage(t *testing.T) {
	env := newTestEnv(t)
	visits := everyPage(t, env)
	ctx := newBrowser(t)
	base := env.http.URL
	do := browserStep(t, ctx)
	signedIn := ""
	for i, v := range visits {
		if v.As != signedIn {
			if signedIn != "" {
				do("sign out "+signedIn,
					chromedp.Navigate(base+"/images"),
					loaded(),
					chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
					chromedp.WaitVisible(chromedp.ID("username")),
				)
			}
			if v.As != "" {
				do("sign in as "+v.As,
					chromedp.Navigate(base+"/login"),
					chromedp.WaitVisible(chromedp.ID("username")),
					loaded(),
					chromedp.SendKeys(chromedp.ID("username"), v.As),
					chromedp.SendKeys(chromedp.ID("password"), testAdminPassword),
					chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
					chromedp.WaitVisible(chromedp.CSS(`nav.mainnav`)),
				)
			}
			signedIn = v.As
		}
		actions := []chromedp.Action[chromedp.Void]{chromedp.Navigate(base + v.Path), loaded()}
		if v.Submit != "" {
			for id, value := range v.Fill {
				actions = append(actions, chromedp.Evaluate[chromedp.Void](`document.getElementById(`+jsString(id)+`).value = `+jsString(value)))
			}
			// Submitted after the script returns: a navigation while the
			// script runs destroys its context ("Cannot find context").
			actions = append(actions, chromedp.Evaluate[chromedp.Void](`setTimeout(() => document.querySelector(`+jsString(v.Submit)+`).requestSubmit())`))
		}
		for _, sel := range []string{v.Shows, v.Live} {
			if sel != "" {
				actions = append(actions, chromedp.WaitVisible(chromedp.CSS(sel)))
			}
		}
		do(v.Name, append(actions, loaded())...)
		checkAccessibility(t, ctx, v.Name)
		if keepArtifacts() {
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(t.ArtifactDir(), fmt.Sprintf("%02d %s.png", i, v.Name)), shot, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// keepArtifacts tells whether go test was given -artifacts: then the test
// keeps a picture of every page it visits, to be looked at.
func keepArtifacts() bool {
	f := flag.Lookup("test.artifacts")
	return f != nil && f.Value.String() == "true"
}

// jsString is s as a JavaScript string literal (encoding/json escapes what
// JSON allows in a string and JavaScript does not: U+2028 and U+2029).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
