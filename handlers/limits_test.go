package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"imagehub/store"
)

// TestGroupBuildLimitRefusesAndWritesNothing plays a group admin who queues
// more builds than the group may have waiting or running: through the API
// (a new custom image, a rebuild with a new recipe) and the form, the extra
// build is refused with 409 and the reason, and nothing is written.
// Administrators' System images are not held back.
func TestGroupBuildLimitRefusesAndWritesNothing(t *testing.T) {
	env := newGroupEnv(t)
	env.store.SetGroupBuildLimit(2)
	gina := env.withToken("gina", store.ScopeAdmin)
	build := func(name string) map[string]any {
		return map[string]any{"displayName": name, "type": "cpu", "build": map[string]string{"baseImage": "debian:bookworm", "pip": "numpy"}}
	}
	for _, name := range []string{"g-one", "g-two"} {
		if res := gina.json(http.MethodPost, "/api/v1/groups/team-g/images", build(name), nil); res.StatusCode != http.StatusCreated {
			t.Fatalf("build %s: %d", name, res.StatusCode)
		}
	}
	// g-one's build fails, which frees a place for g-three.
	ctx := context.Background()
	active, _ := env.store.ActiveBuilds(ctx, "g-one", "g-two")
	if err := env.store.FinishBuild(ctx, active["g-one"].ID, store.BuildFailed, "", "x"); err != nil {
		t.Fatal(err)
	}
	if res := gina.json(http.MethodPost, "/api/v1/groups/team-g/images", build("g-three"), nil); res.StatusCode != http.StatusCreated {
		t.Fatalf("build g-three: %d", res.StatusCode)
	}
	images, before := env.imageCount(), env.buildCount()
	const reason = "Group team-g has 2 builds waiting or running; the limit is 2. Wait for one to finish, or cancel one first."

	var e errorBody
	if res := gina.json(http.MethodPost, "/api/v1/groups/team-g/images", build("g-four"), &e); res.StatusCode != http.StatusConflict || e.Error != reason {
		t.Errorf("a new custom image past the limit: %d %q, want 409 %q", res.StatusCode, e.Error, reason)
	}
	if res := gina.json(http.MethodPost, "/api/v1/images/g-one/rebuild", map[string]string{"baseImage": "debian:bookworm", "pip": "evil"}, &e); res.StatusCode != http.StatusConflict || e.Error != reason {
		t.Errorf("a rebuild past the limit: %d %q, want 409 %q", res.StatusCode, e.Error, reason)
	}
	if img, _ := env.store.FindImage(ctx, "g-one"); img.Recipe.Pip != "numpy" {
		t.Errorf("a refused rebuild changed the recipe to %+v", img.Recipe)
	}

	web := env.signIn("gina")
	web.getPage("/groups/team-g/images/new")
	res := web.postForm("/groups/team-g/images", url.Values{
		"kind": {"build"}, "displayName": {"g-five"}, "type": {"cpu"}, "baseImage": {"debian:bookworm"}, "pip": {"pandas"},
	})
	if res.StatusCode != http.StatusConflict {
		t.Errorf("the form past the limit: %d, want 409", res.StatusCode)
	}
	doc := web.readPage(res)
	if got := doc.Find(".form-errors").Text(); !strings.Contains(got, reason) {
		t.Errorf("the form says %q, want %q", got, reason)
	}
	if got := doc.Find("#pip").Text(); got != "pandas" {
		t.Errorf("the form kept pip as %q", got)
	}
	if n, b := env.imageCount(), env.buildCount(); n != images || b != before {
		t.Errorf("after the refusals: %d images and %d builds, want %d and %d", n, b, images, before)
	}

	// An administrator's System images are not limited.
	admin := env.withToken("admin", store.ScopeAdmin)
	for _, name := range []string{"s-one", "s-two", "s-three"} {
		b := build(name)
		b["global"] = true
		if res := admin.json(http.MethodPost, "/api/v1/images", b, &e); res.StatusCode != http.StatusCreated {
			t.Errorf("System image %s: %d %q", name, res.StatusCode, e.Error)
		}
	}
}

// buildCount is how many builds the store holds, of every image.
func (env *testEnv) buildCount() int {
	env.t.Helper()
	bs, err := env.store.ListBuildsByStatus(context.Background(), store.BuildQueued, store.BuildRunning, store.BuildPushing,
		store.BuildSucceeded, store.BuildFailed, store.BuildCancelled, store.BuildInterrupted)
	if err != nil {
		env.t.Fatal(err)
	}
	return len(bs)
}
