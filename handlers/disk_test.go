package handlers

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"imagehub/store"
)

// TestDiskPage shows what the disk keeper reports, and its button asks for
// the registry's garbage collection from the queue (CSRF-checked), whose
// result the page then shows.
func TestDiskPage(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	page, status := admin.getPage("/admin/disk")
	if status != http.StatusOK {
		t.Fatalf("disk page: %d", status)
	}
	for sel, want := range map[string]string{
		"#disk-cache":       "3 GiB in 7 images, limit 20 GiB",
		"#disk-free":        "42 GiB (builds wait below 5 GiB)",
		"#disk-logs":        "the newest 10 builds of each image",
		"#disk-reclaimable": "0 bytes in 0 blobs",
		"#disk-last-gc":     "Never.",
	} {
		if got := strings.Join(strings.Fields(page.Find(sel).Text()), " "); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to say %q", sel, got, want)
		}
	}
	if page.Find(`.mainnav a[href="/admin/disk"].active`).Length() != 1 {
		t.Error("the admin navigation does not lead to the disk page")
	}

	if res := admin.request(http.MethodPost, "/admin/disk/gc", nil, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); res.StatusCode != http.StatusForbidden {
		t.Errorf("a garbage collection without the CSRF token: %d, want 403", res.StatusCode)
	}
	if len(env.queue.chores) != 0 {
		t.Fatal("a request without the CSRF token asked for a collection")
	}
	res := admin.postForm("/admin/disk/gc", url.Values{})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/disk" {
		t.Fatalf("collect: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if !slices.Equal(env.queue.chores, []string{"the registry's garbage collection"}) {
		t.Errorf("chores %v, want the garbage collection", env.queue.chores)
	}
	page, _ = admin.getPage("/admin/disk")
	if got := page.Find("#disk-last-gc").Text(); !strings.Contains(got, "freed 0 bytes in 0 blobs") {
		t.Errorf("last collection %q", got)
	}
	if got := page.Find("#flash").Text(); !strings.Contains(got, "Garbage collection asked for") {
		t.Errorf("flash %q", got)
	}

	var report apiDisk
	api := env.withToken("admin", store.ScopeAdmin)
	if res := api.json(http.MethodGet, "/api/v1/disk", nil, &report); res.StatusCode != http.StatusOK ||
		report.CacheBytes != 3<<30 || report.FreeBytes != 42<<30 || !report.EmbeddedRegistry || report.LastGC == nil || report.Reclaimable == nil {
		t.Errorf("GET /api/v1/disk: %d %+v", res.StatusCode, report)
	}
}

// TestHeldBuildSaysWhatItWaitsFor: while the queue holds builds, a queued
// build's JSON, its page and its image's page say why.
func TestHeldBuildSaysWhatItWaitsFor(t *testing.T) {
	env := newTestEnv(t)
	const waiting = "waiting for disk space: 3.1 GiB free, 5 GiB needed"
	env.queue.waiting = waiting
	api := env.withToken("admin", store.ScopeAdmin)
	var img struct {
		LatestBuild struct {
			ID      int64  `json:"id"`
			Waiting string `json:"waiting"`
		} `json:"latestBuild"`
	}
	if res := api.json(http.MethodPost, "/api/v1/images", map[string]any{"displayName": "held", "type": "cpu", "global": true,
		"build": map[string]string{"baseImage": "debian:bookworm", "pip": "numpy"}}, &img); res.StatusCode != http.StatusCreated || img.LatestBuild.Waiting != waiting {
		t.Fatalf("create: %d %+v", res.StatusCode, img)
	}
	id := strconv.FormatInt(img.LatestBuild.ID, 10)
	var b struct{ Waiting string }
	if api.json(http.MethodGet, "/api/v1/builds/"+id, nil, &b); b.Waiting != waiting {
		t.Errorf("GET build: waiting %q", b.Waiting)
	}
	admin := env.signIn("admin")
	page, _ := admin.getPage("/admin/builds/" + id)
	if got := page.Find("#build-waiting").Text(); !strings.Contains(got, waiting) {
		t.Errorf("build page says %q", got)
	}
	page, _ = admin.getPage("/admin/images/held")
	if got := page.Find("#building-notice").Text(); !strings.Contains(got, waiting) {
		t.Errorf("image page says %q", got)
	}
	env.queue.mu.Lock()
	env.queue.waiting = ""
	env.queue.mu.Unlock()
	b.Waiting = ""
	if api.json(http.MethodGet, "/api/v1/builds/"+id, nil, &b); b.Waiting != "" {
		t.Errorf("with nothing held, the build waits for %q", b.Waiting)
	}
}

// TestDeletingAnImageFreesItsDisk: deleting an image (and a group with its
// images) has the layer cache forget their repositories.
func TestDeletingAnImageFreesItsDisk(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateImage(testImage("gone"))
	env.mustCreateGroup("team-x")
	own := testImage("owned")
	own.Owner, own.Global = "team-x", false
	env.mustCreateImage(own)
	admin := env.signIn("admin")
	if res := admin.postForm("/admin/images/gone/delete", url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete image: %d", res.StatusCode)
	}
	if res := admin.postForm("/admin/groups/team-x/delete", url.Values{}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete group: %d", res.StatusCode)
	}
	want := []string{"registry.test/imagehub/gone", "registry.test/imagehub/owned"}
	if !slices.Equal(env.queue.forgotten, want) {
		t.Errorf("the layer cache was asked to forget %v, want %v", env.queue.forgotten, want)
	}
}

// TestPrunedBuild: a build that lost its log says so on its page and in the
// API, and stays in the image's history.
func TestPrunedBuild(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	r := store.Recipe{BaseImage: "docker.io/library/debian:bookworm", Pip: "numpy"}
	img := testImage("old")
	img.URL, img.Recipe = "", &r
	env.mustCreateImage(img)
	b, err := env.store.CreateBuild(ctx, "old", r, "registry.test/imagehub/old:abc")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.store.FinishBuild(ctx, b.ID, store.BuildFailed, "", "no"); err != nil {
		t.Fatal(err)
	}
	if err := env.store.MarkBuildsPruned(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	admin := env.signIn("admin")
	id := strconv.FormatInt(b.ID, 10)
	page, _ := admin.getPage("/admin/builds/" + id)
	if page.Find("#log-pruned").Length() != 1 || page.Find("#build-log").Length() != 0 {
		t.Error("the build page of a pruned build does not say its log was deleted")
	}
	page, _ = admin.getPage("/admin/images/old")
	if got := page.Find("table.builds .pruned").Text(); got != "log and tag deleted" {
		t.Errorf("history says %q", got)
	}
	var body map[string]any
	res := env.withToken("admin", store.ScopeAdmin).json(http.MethodGet, "/api/v1/builds/"+id+"/log", nil, &body)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body["error"].(string), "--keep-builds") {
		t.Errorf("log of a pruned build: %d %v", res.StatusCode, body)
	}
}
