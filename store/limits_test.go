package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"imagehub/store"
)

// TestGroupBuildLimit asks for more builds of a group's images at once than
// the group may have waiting or running: exactly the limit are queued, the
// rest are refused with the reason and write nothing (not even the recipe),
// while System images and other groups are not held back. A finished build
// frees its place.
func TestGroupBuildLimit(t *testing.T) {
	s, ctx := open(t), context.Background()
	s.SetGroupBuildLimit(2)
	mustNoErr(t, s.CreateGroup(ctx, &store.Group{Name: "team-a"}))
	mustNoErr(t, s.CreateGroup(ctx, &store.Group{Name: "team-b"}))
	r := store.Recipe{BaseImage: "r/base:1", Pip: "numpy"}
	const n = 6
	for i := range n {
		mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: fmt.Sprintf("a%d", i), Type: store.TypeCPU, Owner: "team-a", Recipe: &r}))
		mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: fmt.Sprintf("sys%d", i), Type: store.TypeCPU, Global: true, Recipe: &r}))
	}
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "b0", Type: store.TypeCPU, Owner: "team-b", Recipe: &r}))

	changed := store.Recipe{BaseImage: "r/base:1", Pip: "numpy\nevil"}
	var (
		wg     sync.WaitGroup
		errs   = make([]error, n)
		queued = make([]*store.Build, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			queued[i], errs[i] = s.CreateBuild(ctx, fmt.Sprintf("a%d", i), changed, "127.0.0.1:5000/imagehub/a:abc")
		}()
	}
	wg.Wait()
	var ok []*store.Build
	for i, err := range errs {
		switch {
		case err == nil:
			ok = append(ok, queued[i])
		case store.ErrorCode(err) != store.ECONFLICT:
			t.Errorf("build of a%d: %v, want a conflict", i, err)
		case store.ErrorMessage(err) != "Group team-a has 2 builds waiting or running; the limit is 2. Wait for one to finish, or cancel one first.":
			t.Errorf("build of a%d refused with %q", i, store.ErrorMessage(err))
		default:
			if img, _ := s.FindImage(ctx, fmt.Sprintf("a%d", i)); *img.Recipe != r {
				t.Errorf("a refused build changed a%d's recipe to %+v", i, img.Recipe)
			}
			if bs, _ := s.ListBuilds(ctx, fmt.Sprintf("a%d", i)); len(bs) != 0 {
				t.Errorf("a refused build of a%d was written: %v", i, bs)
			}
		}
	}
	if len(ok) != 2 {
		t.Fatalf("%d builds of team-a queued, want 2", len(ok))
	}
	for i := range n {
		_, err := s.CreateBuild(ctx, fmt.Sprintf("sys%d", i), r, "127.0.0.1:5000/imagehub/sys:abc")
		mustNoErr(t, err)
	}
	_, err := s.CreateBuild(ctx, "b0", r, "127.0.0.1:5000/imagehub/b0:abc")
	mustNoErr(t, err)

	mustNoErr(t, s.FinishBuild(ctx, ok[0].ID, store.BuildFailed, "", "x"))
	var next string
	for i := range n {
		if name := fmt.Sprintf("a%d", i); name != ok[0].Image && name != ok[1].Image {
			next = name
			break
		}
	}
	_, err = s.CreateBuild(ctx, next, r, "127.0.0.1:5000/imagehub/a:abc")
	mustNoErr(t, err)

	s.SetGroupBuildLimit(0) // no limit
	_, err = s.CreateBuild(ctx, ok[0].Image, r, "127.0.0.1:5000/imagehub/a:abc")
	mustNoErr(t, err)
}

// TestDeleteWhileBuilding: an image, or the group that owns it, cannot be
// deleted while a build of the image waits or runs (its worker would run on
// and might still push); once the build is cancelled, it can.
func TestDeleteWhileBuilding(t *testing.T) {
	s, ctx := open(t), context.Background()
	mustNoErr(t, s.CreateGroup(ctx, &store.Group{Name: "team-a"}))
	r := store.Recipe{BaseImage: "r/base:1", Pip: "numpy"}
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "custom", Type: store.TypeCPU, Owner: "team-a", Recipe: &r}))
	b, err := s.CreateBuild(ctx, "custom", r, "127.0.0.1:5000/imagehub/custom:abc")
	mustNoErr(t, err)
	mustNoErr(t, s.StartBuild(ctx, b.ID))

	err = s.DeleteImage(ctx, "custom")
	if want := fmt.Sprintf("Build #%d of image custom is still running; cancel the build first, then delete the image.", b.ID); store.ErrorCode(err) != store.ECONFLICT || store.ErrorMessage(err) != want {
		t.Errorf("deleting the image mid-build: %v, want a conflict %q", err, want)
	}
	err = s.DeleteGroup(ctx, "team-a")
	if want := fmt.Sprintf("Build #%d of the group's image custom is still running; cancel the build first, then delete the group.", b.ID); store.ErrorCode(err) != store.ECONFLICT || store.ErrorMessage(err) != want {
		t.Errorf("deleting the group mid-build: %v, want a conflict %q", err, want)
	}
	if _, err := s.FindImage(ctx, "custom"); err != nil {
		t.Errorf("the image is gone after a refusal: %v", err)
	}
	if got, _ := s.FindBuild(ctx, b.ID); got.Status != store.BuildRunning {
		t.Errorf("the build is %s after a refusal", got.Status)
	}

	mustNoErr(t, s.FinishBuild(ctx, b.ID, store.BuildCancelled, "", "cancelled"))
	mustNoErr(t, s.DeleteImage(ctx, "custom"))
	mustNoErr(t, s.DeleteGroup(ctx, "team-a"))
}
