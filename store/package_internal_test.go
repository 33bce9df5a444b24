package store

import (
	"context"
	"strings"
	"testing"
)

// TestDeletingAnImageDeletesItsLists: a build's package list goes with the
// build, and the build with its image.
func TestDeletingAnImageDeletesItsLists(t *testing.T) {
	s, _ := openInternal(t)
	ctx := context.Background()
	r := createSci(t, s)
	b, err := s.CreateBuild(ctx, "sci", r, "reg/imagehub/sci:t")
	must(t, err)
	must(t, s.SucceedBuild(ctx, b.ID, "sha256:"+strings.Repeat("a", 64), []Package{{ManagerApt, "jq", "1.6"}}))
	count := func() (lists, pkgs int) {
		must(t, s.db.QueryRow(`SELECT (SELECT COUNT(*) FROM package_lists), (SELECT COUNT(*) FROM packages)`).Scan(&lists, &pkgs))
		return lists, pkgs
	}
	if lists, pkgs := count(); lists != 1 || pkgs != 1 {
		t.Fatalf("after the build: %d lists, %d packages; want 1 and 1", lists, pkgs)
	}
	must(t, s.DeleteImage(ctx, "sci"))
	if lists, pkgs := count(); lists != 0 || pkgs != 0 {
		t.Errorf("after deleting the image: %d lists, %d packages are left", lists, pkgs)
	}
}
