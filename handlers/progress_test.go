package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"imagehub/store"
)

// progressImage makes a custom image of owner with two succeeded builds of
// four steps of 10 s each and a third that runs, at step 2 of 4 begun 5 s
// ago, with a few lines of log; it returns the image's name and the running
// build's id. Its ETA is then 5 + 10 + 10 = 25 s, less the time since.
func (env *testEnv) progressImage(name, owner string) (string, int64) {
	env.t.Helper()
	ctx := context.Background()
	must := func(err error) {
		env.t.Helper()
		if err != nil {
			env.t.Fatal(err)
		}
	}
	r := store.Recipe{BaseImage: "docker.io/library/debian:bookworm", Apt: "jq", Pip: "numpy"}
	img := env.mustCreateImage(&store.Image{DisplayName: name, Owner: owner, Global: owner == store.OwnerSystem, Recipe: &r})
	start := func() int64 {
		b, err := env.store.CreateBuild(ctx, img.Name, r, "registry.test/imagehub/"+img.Name+":t1")
		must(err)
		must(env.store.StartBuild(ctx, b.ID))
		return b.ID
	}
	step := func(id int64, n int, ago time.Duration) {
		must(env.store.RecordBuildStep(ctx, id, n, 4, time.Now().Add(-ago)))
	}
	for range 2 {
		id := start()
		for n := range 4 {
			step(id, n+1, time.Duration(40-10*n)*time.Second)
		}
		must(env.store.SucceedBuild(ctx, id, "sha256:"+strings.Repeat("ab", 32), nil))
	}
	running := start()
	step(running, 1, 15*time.Second)
	step(running, 2, 5*time.Second)
	w, err := env.server.logs.Writer(running)
	must(err)
	fmt.Fprintf(w, "STEP 1/4: FROM debian\nSTEP 2/4: RUN apt-get install -y jq\n")
	must(w.Close())
	return img.Name, running
}

// TestBuildProgressShown: a running build's JSON, its image's and the
// build list's carry its step and ETA; its page shows the bar (the steps
// done of the steps), the step and the time left, in a fragment that polls
// itself; the images table marks the image "building 2/4". Once the build
// has finished, none of them has progress, and the fragment polls no more.
func TestBuildProgressShown(t *testing.T) {
	env := newTestEnv(t)
	api := env.withToken("admin", store.ScopeAdmin)
	admin := env.signIn("admin")
	name, id := env.progressImage("torch", store.OwnerSystem)
	type progressBody struct {
		Step       int  `json:"step"`
		Steps      int  `json:"steps"`
		ETASeconds *int `json:"etaSeconds"`
	}
	var build struct {
		Progress *progressBody `json:"progress"`
	}
	api.json(http.MethodGet, "/api/v1/builds/"+strconv.FormatInt(id, 10), nil, &build)
	if p := build.Progress; p == nil || p.Step != 2 || p.Steps != 4 || p.ETASeconds == nil || *p.ETASeconds < 15 || *p.ETASeconds > 26 {
		t.Errorf("the running build's progress: %+v, want step 2 of 4 with about 25 s left", p)
	}
	var image struct {
		LatestBuild struct {
			Progress *progressBody `json:"progress"`
		} `json:"latestBuild"`
	}
	api.json(http.MethodGet, "/api/v1/images/"+name, nil, &image)
	var list struct {
		Items []struct {
			Progress *progressBody `json:"progress"`
		} `json:"items"`
	}
	api.json(http.MethodGet, "/api/v1/images/"+name+"/builds", nil, &list)
	if p := image.LatestBuild.Progress; p == nil || p.Step != 2 || len(list.Items) != 3 || list.Items[0].Progress == nil || list.Items[1].Progress != nil {
		t.Errorf("the image's latest build: %+v; the list: %+v", p, list.Items)
	}

	page, _ := admin.getPage("/admin/builds/" + strconv.FormatInt(id, 10))
	bar := page.Find("#build-progress progress#build-progress-bar")
	if bar.AttrOr("max", "") != "4" || bar.AttrOr("value", "") != "1" {
		t.Errorf("the bar: max %q value %q, want 1 step of 4 done", bar.AttrOr("max", ""), bar.AttrOr("value", ""))
	}
	if got := page.Find(`label[for="build-progress-bar"]`).Text(); got != "Step 2 of 4" {
		t.Errorf("the bar's label: %q", got)
	}
	if got := page.Find("#build-eta").Text(); !strings.HasPrefix(got, "About 2") && !strings.HasPrefix(got, "About 1") || !strings.HasSuffix(got, " s left.") {
		t.Errorf("the time left: %q, want about 25 s", got)
	}
	fragment := "/admin/builds/" + strconv.FormatInt(id, 10) + "/progress"
	frag, status := admin.getPage(fragment)
	if status != http.StatusOK || frag.Find(`#build-progress[data-hx-trigger="every 2s"]`).AttrOr("data-hx-get", "") != fragment ||
		frag.Find("#build-progress-bar").Length() != 1 || frag.Find("nav.mainnav").Length() != 0 {
		t.Errorf("the fragment (%d) is not the bar alone, polling itself", status)
	}
	table, _ := admin.getPage("/admin/images")
	if got := table.Find("#image-" + name + " .building-mark .muted").Text(); got != "building 2/4" {
		t.Errorf("the table's mark: %q, want building 2/4", got)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A build before its first step: no bar yet.
	_, other := env.progressImage("other", store.OwnerSystem)
	must(env.store.FinishBuild(context.Background(), other, store.BuildFailed, "", "broken"))
	r := store.Recipe{BaseImage: "debian"}
	env.mustCreateImage(&store.Image{DisplayName: "fresh", Global: true, Recipe: &r})
	fresh, err := env.store.CreateBuild(context.Background(), "fresh", r, "registry.test/imagehub/fresh:t1")
	must(err)
	must(env.store.StartBuild(context.Background(), fresh.ID))
	frag, _ = admin.getPage("/admin/builds/" + strconv.FormatInt(fresh.ID, 10) + "/progress")
	if frag.Find("#build-progress-bar").Length() != 0 || !strings.Contains(frag.Text(), "Preparing") || frag.Find("#build-progress[data-hx-trigger]").Length() != 1 {
		t.Error("a build before its first step: want no bar, Preparing, and the poll")
	}

	must(env.store.SucceedBuild(context.Background(), id, "sha256:"+strings.Repeat("cd", 32), nil))
	build.Progress = nil
	api.json(http.MethodGet, "/api/v1/builds/"+strconv.FormatInt(id, 10), nil, &build)
	frag, _ = admin.getPage(fragment)
	page, _ = admin.getPage("/admin/builds/" + strconv.FormatInt(id, 10))
	if build.Progress != nil || frag.Find("#build-progress[data-hx-trigger]").Length() != 0 || frag.Find("#build-progress[hidden]").Length() != 1 ||
		page.Find("#build-progress-bar").Length() != 0 {
		t.Errorf("a finished build: progress %+v, or a bar or a poll left", build.Progress)
	}
}
