package store_test

import (
	"context"
	"slices"
	"testing"

	"imagehub/store"
)

// TestBaseUpdateMark follows an image's base through builds and checks: the
// base digest a build recorded, a check that sees it moved (the mark), a
// rebuild on the new base (no mark), a late check about a build that is no
// longer current (no mark either).
func TestBaseUpdateMark(t *testing.T) {
	s, ctx := open(t), context.Background()
	r := store.Recipe{BaseImage: "r/base:1", Apt: "jq"}
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "app", Type: store.TypeCPU, Global: true, Recipe: &r}))
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "plain", Type: store.TypeCPU, Global: true, URL: "r/plain:1"}))
	build := func(base string) int64 {
		t.Helper()
		b, err := s.CreateBuild(ctx, "app", r, "127.0.0.1:5000/imagehub/app:abc")
		mustNoErr(t, err)
		mustNoErr(t, s.StartBuild(ctx, b.ID))
		if base != "" {
			mustNoErr(t, s.SetBuildBase(ctx, b.ID, base))
		}
		mustNoErr(t, s.SucceedBuild(ctx, b.ID, digestN(int(b.ID)), nil))
		return b.ID
	}
	base := func() store.Base {
		t.Helper()
		img, err := s.FindImage(ctx, "app")
		mustNoErr(t, err)
		return img.Base
	}
	baseA, baseB := digestN(1000), digestN(2000)

	if _, err := s.CurrentBuild(ctx, "app"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("CurrentBuild before any build: %v, want ENOTFOUND", err)
	}
	legacy := build("") // a build that did not say what it was built on
	if got := base(); got.BaseDigest != "" || got.BaseUpdateAvailable {
		t.Errorf("after a build without a base digest: %+v", got)
	}
	first := build(baseA)
	if got := base(); got.BaseDigest != baseA || got.BaseLatestDigest != baseA || got.BaseCheckedAt == nil || got.BaseUpdateAvailable {
		t.Errorf("after a build on A: %+v", got)
	}
	if b, err := s.CurrentBuild(ctx, "app"); err != nil || b.ID != first || b.BaseDigest != baseA {
		t.Errorf("build %d: %+v, %v; want base digest %s", first, b, err, baseA)
	}
	mustNoErr(t, s.RecordBaseCheck(ctx, legacy, baseB))
	if got := base(); got.BaseUpdateAvailable {
		t.Errorf("a check of an older build marked the image: %+v", got)
	}
	mustNoErr(t, s.RecordBaseCheck(ctx, first, baseB))
	if got := base(); got.BaseDigest != baseA || got.BaseLatestDigest != baseB || !got.BaseUpdateAvailable {
		t.Errorf("after the base moved to B: %+v, want the mark", got)
	}
	names, err := s.ImagesWithBase(ctx)
	if err != nil || !slices.Equal(names, []string{"app"}) {
		t.Errorf("ImagesWithBase = %v, %v; want [app]", names, err)
	}
	build(baseB)
	if got := base(); got.BaseDigest != baseB || got.BaseUpdateAvailable {
		t.Errorf("after a rebuild on B: %+v, want no mark", got)
	}
	mustNoErr(t, s.RecordBaseCheck(ctx, first, baseA))
	if got := base(); got.BaseUpdateAvailable || got.BaseLatestDigest != baseB {
		t.Errorf("a late check of the build before the rebuild: %+v, want no mark", got)
	}
	failed, err := s.CreateBuild(ctx, "app", r, "127.0.0.1:5000/imagehub/app:abc")
	mustNoErr(t, err)
	mustNoErr(t, s.FinishBuild(ctx, failed.ID, store.BuildCancelled, "", ""))
	if err := s.RecordBaseCheck(ctx, failed.ID, baseA); store.ErrorCode(err) != store.ECONFLICT {
		t.Errorf("a check of a cancelled build: %v, want ECONFLICT", err)
	}
	if err := s.SetBuildBase(ctx, first, baseA); store.ErrorCode(err) != store.ECONFLICT {
		t.Errorf("SetBuildBase of a finished build: %v, want ECONFLICT", err)
	}
	if err := s.RecordBaseCheck(ctx, first, "latest"); store.ErrorCode(err) != store.EINVALID {
		t.Errorf("a check with no digest: %v, want EINVALID", err)
	}
	if img, err := s.FindImage(ctx, "plain"); err != nil || img.BaseDigest != "" || img.BaseUpdateAvailable {
		t.Errorf("an image that is not built: %+v, %v", img, err)
	}
}
