package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"imagehub/store"
)

func buildIDs(bs []*store.Build) []int64 {
	var ids []int64
	for _, b := range bs {
		ids = append(ids, b.ID)
	}
	return ids
}

// TestBuildRetention runs four builds of an image and keeps two: the two
// older ones expire until they are marked pruned, a waiting build is always
// kept, and the images that have something expired are found.
func TestBuildRetention(t *testing.T) {
	s, ctx := open(t), context.Background()
	r := store.Recipe{BaseImage: "r/base:1", Pip: "numpy"}
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "sci", Type: store.TypeCPU, Global: true, Recipe: &r}))
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "other", Type: store.TypeCPU, Global: true, Recipe: &r}))
	var ids []int64
	for i := range 4 {
		b, err := s.CreateBuild(ctx, "sci", r, fmt.Sprintf("reg/imagehub/sci:t%d", i))
		mustNoErr(t, err)
		mustNoErr(t, s.FinishBuild(ctx, b.ID, store.BuildFailed, "", "no"))
		ids = append(ids, b.ID)
	}
	b, err := s.CreateBuild(ctx, "other", r, "reg/imagehub/other:t")
	mustNoErr(t, err)
	mustNoErr(t, s.FinishBuild(ctx, b.ID, store.BuildFailed, "", "no"))

	kept, expired, err := s.BuildRetention(ctx, "sci", 2)
	mustNoErr(t, err)
	if got, want := buildIDs(kept), []int64{ids[3], ids[2]}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	if got, want := buildIDs(expired), []int64{ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Errorf("expired %v, want %v", got, want)
	}
	if names, err := s.ImagesWithExpiredBuilds(ctx, 2); err != nil || !slices.Equal(names, []string{"sci"}) {
		t.Errorf("images with expired builds: %v, %v; want [sci]", names, err)
	}
	if names, _ := s.ImagesWithExpiredBuilds(ctx, 0); names != nil {
		t.Errorf("keeping every build, images with expired builds: %v", names)
	}
	if _, expired, _ := s.BuildRetention(ctx, "sci", 0); expired != nil {
		t.Errorf("keeping every build expired %v", buildIDs(expired))
	}

	mustNoErr(t, s.MarkBuildsPruned(ctx, ids[0], ids[1]))
	if b, _ := s.FindBuild(ctx, ids[0]); b.PrunedAt == nil {
		t.Error("a pruned build has no PrunedAt")
	}
	if _, expired, _ := s.BuildRetention(ctx, "sci", 2); len(expired) != 0 {
		t.Errorf("after pruning, expired %v", buildIDs(expired))
	}
	if names, _ := s.ImagesWithExpiredBuilds(ctx, 2); len(names) != 0 {
		t.Errorf("after pruning, images with expired builds: %v", names)
	}
	if err := s.MarkBuildsPruned(ctx, 9999); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("pruning a missing build: %v", err)
	}

	// A waiting build is kept even when it is not among the newest.
	q, err := s.CreateBuild(ctx, "sci", r, "reg/imagehub/sci:q")
	mustNoErr(t, err)
	kept, _, _ = s.BuildRetention(ctx, "sci", 1)
	if !slices.Contains(buildIDs(kept), q.ID) {
		t.Errorf("the queued build %d is not kept: %v", q.ID, buildIDs(kept))
	}
}

func TestImageURLsWithPrefix(t *testing.T) {
	s, ctx := open(t), context.Background()
	for _, img := range []*store.Image{
		{DisplayName: "a", Type: store.TypeCPU, URL: "reg:5000/imagehub/sci:t1@sha256:" + fmt.Sprintf("%064d", 1), Global: true},
		{DisplayName: "b", Type: store.TypeUniversal, URL: "docker.io/library/busybox:latest", UseGPUURL: true,
			URLForGPU: "reg:5000/imagehub/sci:t2", Global: true},
		{DisplayName: "c", Type: store.TypeCPU, URL: "reg:5000/imagehub/science:t1", Global: true},
	} {
		mustNoErr(t, s.CreateImage(ctx, img))
	}
	got, err := s.ImageURLsWithPrefix(ctx, "reg:5000/imagehub/sci:")
	mustNoErr(t, err)
	slices.Sort(got)
	if want := []string{"reg:5000/imagehub/sci:t1@sha256:" + fmt.Sprintf("%064d", 1), "reg:5000/imagehub/sci:t2"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
