package handlers

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"imagehub/store"
)

// TestDeletingAnImageDeletesItsBuildLogs deletes an image and a group with
// its own image: the log folders of their builds go with them; another
// image's stay.
func TestDeletingAnImageDeletesItsBuildLogs(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	env.mustCreateGroup("team")
	r := store.Recipe{BaseImage: "docker.io/library/debian:bookworm"}
	build := func(image string) string {
		t.Helper()
		b, err := env.store.CreateBuild(ctx, image, r, "registry.test/imagehub/"+image+":abc")
		if err != nil {
			t.Fatal(err)
		}
		if err := env.store.FinishBuild(ctx, b.ID, store.BuildFailed, "", "failed"); err != nil {
			t.Fatal(err)
		}
		dir := env.server.logs.Dir(b.ID)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "build.log"), []byte("a line\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, img := range []*store.Image{
		{DisplayName: "gone", Global: true, Recipe: &r},
		{DisplayName: "kept", Global: true, Recipe: &r},
		{DisplayName: "owned", Owner: "team", Recipe: &r},
	} {
		env.mustCreateImage(img)
	}
	gone1, gone2, kept, owned := build("gone"), build("gone"), build("kept"), build("owned")

	admin := env.signIn("admin")
	if res := admin.htmx(http.MethodDelete, "/admin/images/gone", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("delete the image: %d", res.StatusCode)
	}
	if res := admin.htmx(http.MethodDelete, "/admin/groups/team", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("delete the group: %d", res.StatusCode)
	}
	for dir, want := range map[string]bool{gone1: false, gone2: false, owned: false, kept: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", dir, err == nil, want)
		}
	}
}
