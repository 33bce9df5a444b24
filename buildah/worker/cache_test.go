package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/recipe"
	"imagehub/buildah/workerspec"
)

// useRecords lists the images whose use a build recorded.
func useRecords(t *testing.T, st workerspec.Storage) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(st.GraphRoot, useDir))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		out[e.Name()] = true
	}
	return out
}

// TestCleanCacheEvictsTheLeastRecentlyUsed builds two images on one base in
// a real store, makes the first one's use two hours old, and cleans the
// cache with a limit just under its size: the first image goes, the second
// and the base (used by both) stay. Images used within KeepRecent stay
// whatever the limit. Then the second goes by its repository, as when its
// image is deleted from imagehub.
func TestCleanCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	buildtest.NeedRoot(t)
	reg, st := buildtest.Registry(t, ""), newTestStorage(t)
	base, _ := pushTestBase(t, reg, st, testBase{name: "stubs/busybox", extra: allStubs()})
	build := func(id int64, name, pip string) workerspec.Spec {
		pkgs := recipe.Packages{Pip: []string{pip}}
		spec := testSpec(t, id, st, reg, base, "imagehub/"+name+":"+recipe.Tag(base, pkgs), pkgs)
		if _, log, _, err := runTestWorker(t, context.Background(), spec); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, log)
		}
		return spec
	}
	old := build(1, "old", "six")
	oldUses := useRecords(t, st)
	recent := build(2, "recent", "requests")
	store, err := OpenStore(st)
	if err != nil {
		t.Fatal(err)
	}
	oldImage, err := store.Image(old.Target)
	if err != nil || !oldUses[oldImage.ID] {
		t.Fatalf("the first build's image %v was not recorded as used (%v)", oldImage, err)
	}
	twoHoursAgo := time.Now().Add(-2 * time.Hour)
	recentUses := useRecords(t, st)
	for id := range oldUses {
		if !recentUses[id] {
			t.Fatalf("image %s's use record went away", id)
		}
	}
	for id := range oldUses {
		if img, err := store.Image(id); err == nil && img.TopLayer == oldImage.TopLayer || id == oldImage.ID {
			os.Chtimes(filepath.Join(st.GraphRoot, useDir, id), twoHoursAgo, twoHoursAgo)
		}
	}

	before, err := CacheUsage(st)
	if err != nil || before.Size <= 0 || before.Images < 3 {
		t.Fatalf("usage before: %+v, %v", before, err)
	}
	if res, err := CleanCache(st, workerspec.CacheCleanup{Limit: 1, KeepRecent: 3 * time.Hour}); err != nil || res.Removed != 0 {
		t.Errorf("with every image used recently: %+v, %v; want nothing removed", res, err)
	}
	// Nothing is kept for being recent: the order alone decides.
	res, err := CleanCache(st, workerspec.CacheCleanup{Limit: before.Size - 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed < 1 || res.Freed <= 0 || res.Size >= before.Size || res.Images != before.Images-res.Removed {
		t.Errorf("clean-up: %+v after %+v; want the old image removed and its bytes freed", res, before)
	}
	if _, err := store.Image(old.Target); err == nil {
		t.Error("the least recently used image is still in the store")
	}
	for _, ref := range []string{recent.Target, base} {
		if _, err := store.Image(ref); err != nil {
			t.Errorf("%s was removed: %v", ref, err)
		}
	}
	if useRecords(t, st)[oldImage.ID] {
		t.Error("the removed image's use record is still there")
	}

	// Nothing is over the limit now; the recent image goes by its repository.
	res, err = CleanCache(st, workerspec.CacheCleanup{Limit: before.Size, RemoveRepositories: []string{reg.Addr() + "/imagehub/recent"}})
	if err != nil || res.Removed != 1 {
		t.Errorf("removing a repository: %+v, %v; want one image removed", res, err)
	}
	if _, err := store.Image(recent.Target); err == nil {
		t.Error("the image of the removed repository is still in the store")
	}
	if _, err := store.Image(base); err != nil {
		t.Errorf("the base went with the repository: %v", err)
	}
}
