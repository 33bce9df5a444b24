package store_test

import (
	"context"
	"strings"
	"testing"

	"imagehub/store"
)

// TestReservedGroupNames refuses "system" and the other reserved words as a
// group's name, on create and on rename, with the reason at the name field.
func TestReservedGroupNames(t *testing.T) {
	s, ctx := open(t), context.Background()
	mustNoErr(t, s.CreateGroup(ctx, &store.Group{Name: "team"}))
	for _, name := range []string{"system", "global", "all", "admin", "new"} {
		err := s.CreateGroup(ctx, &store.Group{Name: name})
		if got := store.ErrorFields(err)["name"]; !strings.Contains(got, "reserved") {
			t.Errorf("create %q: %v, want a reserved-name error at name", name, err)
		}
		err = s.RenameGroup(ctx, "team", &store.Group{Name: name})
		if got := store.ErrorFields(err)["name"]; !strings.Contains(got, "reserved") {
			t.Errorf("rename to %q: %v, want a reserved-name error at name", name, err)
		}
	}
	if _, err := s.FindGroup(ctx, "team"); err != nil {
		t.Errorf("after the refused renames: %v", err)
	}
	// Words that only contain a reserved one are names like any other.
	for _, name := range []string{"systems", "system-team", "admins", "news"} {
		mustNoErr(t, s.CreateGroup(ctx, &store.Group{Name: name}))
	}
}

// TestImageNamedNew gives an image whose display name is "new" a suffixed
// name: /admin/images/new is the add form, so the name "new" could never be
// opened.
func TestImageNamedNew(t *testing.T) {
	s, ctx := open(t), context.Background()
	name, taken, err := s.PreviewImageName(ctx, "new", "xxxxx")
	mustNoErr(t, err)
	if !taken || name != "new-xxxxx" {
		t.Errorf("preview of new = %q, taken %v; want new-xxxxx, taken", name, taken)
	}
	img := &store.Image{DisplayName: "new", Type: store.TypeCPU, URL: "docker.io/library/busybox:latest", Global: true}
	mustNoErr(t, s.CreateImage(ctx, img))
	if img.Name == "new" || !strings.HasPrefix(img.Name, "new-") || img.DisplayName != "new" {
		t.Errorf("image named %q (display name %q), want new-xxxxx", img.Name, img.DisplayName)
	}
}

// TestBuildIDsNeverReused deletes an image with the newest builds: the next
// build gets a new id, not one of theirs (whose log folder it would find).
func TestBuildIDsNeverReused(t *testing.T) {
	s, ctx := open(t), context.Background()
	r := store.Recipe{BaseImage: "r/base:1"}
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "old", Type: store.TypeCPU, Global: true, Recipe: &r}))
	var last int64
	for range 3 {
		b, err := s.CreateBuild(ctx, "old", r, "127.0.0.1:5000/imagehub/old:abc")
		mustNoErr(t, err)
		mustNoErr(t, s.FinishBuild(ctx, b.ID, store.BuildCancelled, "", "cancelled"))
		last = b.ID
	}
	mustNoErr(t, s.DeleteImage(ctx, "old"))
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "next", Type: store.TypeCPU, Global: true, Recipe: &r}))
	b, err := s.CreateBuild(ctx, "next", r, "127.0.0.1:5000/imagehub/next:abc")
	mustNoErr(t, err)
	if b.ID <= last {
		t.Errorf("the build after deleting builds up to #%d is #%d, want a new id", last, b.ID)
	}
}
