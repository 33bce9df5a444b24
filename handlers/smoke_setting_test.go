package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"imagehub/store"
)

// TestSmokeTestSetting: a recipe's smoke test is on unless turned off, in
// the API ("smokeTest": false) and in the build and rebuild forms of both
// scopes (a checkbox, ticked on a new form); the image and build pages say
// which.
func TestSmokeTestSetting(t *testing.T) {
	env := newGroupEnv(t)
	ctx := context.Background()
	admin := env.withToken("admin", store.ScopeAdmin)
	recipeOf := func(name string) store.Recipe {
		t.Helper()
		img, err := env.store.FindImage(ctx, name)
		if err != nil || img.Recipe == nil {
			t.Fatalf("image %s: %v", name, err)
		}
		return *img.Recipe
	}
	latestRecipe := func(name string) store.Recipe {
		t.Helper()
		bs, err := env.store.ListBuilds(ctx, name)
		if err != nil || len(bs) == 0 {
			t.Fatalf("builds of %s: %v", name, err)
		}
		return bs[0].Recipe
	}

	t.Run("API", func(t *testing.T) {
		var img struct {
			Build       map[string]any `json:"build"`
			LatestBuild *buildBody     `json:"latestBuild"`
		}
		res := admin.json("POST", "/api/v1/images", map[string]any{"displayName": "api-on", "type": "cpu",
			"build": map[string]any{"baseImage": "debian:bookworm", "pip": "pyyaml"}}, &img)
		if res.StatusCode != http.StatusCreated || img.Build["smokeTest"] != true || !recipeOf("api-on").SmokeTest.On() {
			t.Errorf("a recipe without smokeTest: %d %v, want it on", res.StatusCode, img.Build)
		}
		res = admin.json("POST", "/api/v1/images", map[string]any{"displayName": "api-off", "type": "cpu",
			"build": map[string]any{"baseImage": "debian:bookworm", "pip": "pyyaml", "smokeTest": false}}, &img)
		if res.StatusCode != http.StatusCreated || img.Build["smokeTest"] != false || recipeOf("api-off").SmokeTest.On() || latestRecipe("api-off").SmokeTest.On() {
			t.Errorf(`"smokeTest": false: %d %v, want it off in the image and its build`, res.StatusCode, img.Build)
		}
		var problem struct {
			Fields map[string]string `json:"fields"`
		}
		res = admin.json("POST", "/api/v1/images", map[string]any{"displayName": "api-bad", "type": "cpu",
			"build": map[string]any{"baseImage": "debian:bookworm", "smokeTest": "no"}}, &problem)
		if res.StatusCode != http.StatusUnprocessableEntity || problem.Fields["build.smokeTest"] != "Must be true or false." {
			t.Errorf(`"smokeTest": "no": %d %v`, res.StatusCode, problem.Fields)
		}
		admin.json("POST", "/api/v1/builds/"+strconv.FormatInt(img.LatestBuild.ID, 10)+"/cancel", nil, nil)
		res = admin.json("POST", "/api/v1/images/api-off/rebuild", map[string]any{"baseImage": "debian:bookworm", "smokeTest": true}, nil)
		if res.StatusCode != http.StatusAccepted || !recipeOf("api-off").SmokeTest.On() || !latestRecipe("api-off").SmokeTest.On() {
			t.Errorf(`rebuild with "smokeTest": true: %d, want it on again`, res.StatusCode)
		}
	})

	for _, sc := range []struct{ user, prefix string }{{"admin", "/admin"}, {"gina", "/groups/team-g"}} {
		t.Run("forms "+sc.prefix, func(t *testing.T) {
			c := env.signIn(sc.user)
			doc, _ := c.getPage(sc.prefix + "/images/new?kind=build")
			if box := doc.Find(`input#smokeTest[type=checkbox][name=smokeTest]`); box.Length() != 1 || box.AttrOr("checked", "none") == "none" {
				t.Errorf("the new build form's smoke test box: %d, checked %v", box.Length(), box.AttrOr("checked", "none"))
			}
			name := "form-" + sc.user
			res := c.postForm(sc.prefix+"/images", url.Values{"kind": {"build"}, "displayName": {name}, "type": {"cpu"},
				"baseImage": {"debian:bookworm"}, "pip": {"pyyaml"}})
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("create: %d", res.StatusCode)
			}
			build := res.Header.Get("Location")
			if recipeOf(name).SmokeTest.On() {
				t.Error("a form without the box ticked kept the smoke test on")
			}
			page, _ := c.getPage(build)
			if got := strings.TrimSpace(page.Find("#build-smoke-test").Text()); got != "Off" {
				t.Errorf("the build page says the smoke test is %q, want Off", got)
			}
			page, _ = c.getPage(sc.prefix + "/images/" + name)
			if got := strings.TrimSpace(page.Find("#image-smoke-test").Text()); got != "Off" {
				t.Errorf("the image page says the smoke test is %q, want Off", got)
			}
			if res := c.postForm(build+"/cancel", url.Values{}); res.StatusCode >= 400 {
				t.Fatalf("cancel: %d", res.StatusCode)
			}
			page, _ = c.getPage(sc.prefix + "/images/" + name + "/rebuild")
			if box := page.Find(`input#smokeTest`); box.Length() != 1 || box.AttrOr("checked", "none") != "none" {
				t.Errorf("the rebuild form does not show the smoke test off")
			}
			res = c.postForm(sc.prefix+"/images/"+name+"/rebuild", url.Values{"baseImage": {"debian:bookworm"}, "pip": {"pyyaml"}, "smokeTest": {"on"}})
			if res.StatusCode != http.StatusSeeOther || !recipeOf(name).SmokeTest.On() || !latestRecipe(name).SmokeTest.On() {
				t.Errorf("rebuild with the box ticked: %d, want the smoke test on", res.StatusCode)
			}
			page, _ = c.getPage(res.Header.Get("Location"))
			if got := strings.TrimSpace(page.Find("#build-smoke-test").Text()); got != "On" {
				t.Errorf("the rebuild's page says the smoke test is %q, want On", got)
			}
		})
	}
}
