package handlers

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeScript is axe-core, vendored from npm as test data
// (testdata/axe/README.md): the browser tests inject it into the pages they
// visit. imagehub never serves it.
//
//go:embed testdata/axe/axe.min.js
var axeScript string

// axeRun runs every axe-core rule on the whole page and answers the
// violations: each rule that fails, with the elements that fail it.
const axeRun = `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
	id: v.id, impact: v.impact || '', help: v.help,
	targets: v.nodes.map(n => n.target.join(' ')),
})))`

// axeViolation is one axe-core rule that a page breaks.
type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// checkAccessibility runs axe-core on the page the browser shows now and
// fails the test for each serious or critical violation, with the CSS
// selectors of the elements at fault. The script is evaluated over the
// DevTools protocol, which the pages' Content-Security-Policy (script-src
// 'self') does not govern: TestAxeRunsUnderTheCSP checks that.
func checkAccessibility(t *testing.T, ctx context.Context, pageName string) {
	t.Helper()
	for _, v := range seriousOnly(axeViolations(t, ctx, pageName)) {
		t.Errorf("%s: axe-core: %s: %s", pageName, v, v.Help)
	}
}

// axeViolations injects axe-core into the page, unless it is there already,
// and answers what it finds.
func axeViolations(t *testing.T, ctx context.Context, pageName string) []axeViolation {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	loaded, err := chromedp.Run(actx, chromedp.Evaluate[bool](`typeof window.axe === 'object'`))
	if err == nil && !loaded {
		_, err = chromedp.Run(actx, chromedp.Evaluate[chromedp.Void](axeScript))
	}
	if err != nil {
		t.Fatalf("%s: injecting axe-core: %v", pageName, err)
	}
	vs, err := chromedp.Run(actx, chromedp.Evaluate[[]axeViolation](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: running axe-core: %v", pageName, err)
	}
	return vs
}

// TestAxeRunsUnderTheCSP shows that axe-core runs in a page that carries
// imagehub's Content-Security-Policy, and that it finds a serious fault
// when there is one: an image without a text alternative, added to the
// sign-in page.
func TestAxeRunsUnderTheCSP(t *testing.T) {
	env := newTestEnv(t)
	ctx := newBrowser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.http.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		loaded(),
	)
	if err != nil {
		t.Fatal(err)
	}
	// An inline script added to the page is refused by the policy, while
	// axe-core, evaluated over the protocol, runs.
	refused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`new Promise(resolve => {
		document.addEventListener('securitypolicyviolation', e => resolve(e.effectiveDirective));
		document.body.append(Object.assign(document.createElement('script'), {textContent: 'window.inlineRan = true'}));
		setTimeout(() => resolve(window.inlineRan ? 'ran' : 'no event'), 2000);
	})`, chromedp.EvalAwaitPromise))
	if err != nil || refused != "script-src-elem" {
		t.Fatalf("an inline script: %q %v; want it refused by script-src", refused, err)
	}
	if vs := axeViolations(t, ctx, "sign-in"); len(seriousOnly(vs)) != 0 {
		t.Fatalf("sign-in page: %+v", vs)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('main').append(Object.assign(document.createElement('img'), {src: 'data:,'}))`)); err != nil {
		t.Fatal(err)
	}
	vs := seriousOnly(axeViolations(t, ctx, "sign-in with an image without alt"))
	if len(vs) != 1 || vs[0].ID != "image-alt" {
		t.Errorf("axe found %+v, want image-alt", vs)
	}
}

// seriousOnly keeps the serious and critical violations.
func seriousOnly(vs []axeViolation) []axeViolation {
	var out []axeViolation
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			out = append(out, v)
		}
	}
	return out
}

// String is a violation as the test reports it.
func (v axeViolation) String() string {
	return fmt.Sprintf("%s (%s) at %s", v.ID, v.Impact, strings.Join(v.Targets, ", "))
}
