package registry

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// blobFiles lists the blobs the registry keeps on disk, by digest.
func blobFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	root := filepath.Join(dir, "docker", "registry", "v2", "blobs", "sha256")
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "data" {
			out["sha256:"+filepath.Base(filepath.Dir(p))] = true
		}
		return nil
	})
	return out
}

func TestAdminDeletesAndCollectsGarbage(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "registry")
	reg, err := StartWithAccounts(ctx, "127.0.0.1:0", dir, testAccounts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	admin, err := OpenAdmin(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := admin.CollectGarbage(ctx, true); err != nil || res != (GCResult{}) {
		t.Fatalf("a dry run on an empty registry: %+v, %v", res, err)
	}

	gone, kept, old := newTestImage("gone"), newTestImage("kept"), newTestImage("old")
	for _, p := range []struct {
		img       testImage
		repo, tag string
	}{{gone, "imagehub/gone", "v1"}, {kept, "imagehub/kept", "v2"}, {old, "imagehub/kept", "v1"}} {
		if code := p.img.push(t, pusher, reg.Addr(), p.repo, p.tag); code != http.StatusCreated {
			t.Fatalf("push %s:%s: %d", p.repo, p.tag, code)
		}
	}
	c, err := admin.Contents(ctx, "imagehub/kept")
	if err != nil || c.Tags["v1"] != digestOf(old.manifest) || c.Tags["v2"] != digestOf(kept.manifest) || len(c.Manifests) != 2 {
		t.Fatalf("contents of imagehub/kept: %+v, %v", c, err)
	}
	if res, err := admin.CollectGarbage(ctx, true); err != nil || res.Blobs != 0 {
		t.Fatalf("a dry run with everything tagged: %+v, %v; want nothing to free", res, err)
	}

	// The whole of one repository goes, and one tag of the other.
	if err := admin.Delete(ctx, "imagehub/gone", []string{"v1"}, []string{digestOf(gone.manifest)}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Delete(ctx, "imagehub/kept", []string{"v1", "never-was"}, []string{digestOf(old.manifest)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "docker", "registry", "v2", "repositories", "imagehub", "gone", "_manifests")); !os.IsNotExist(err) {
		t.Errorf("the emptied repository is still there: %v", err)
	}
	if c, err := admin.Contents(ctx, "imagehub/kept"); err != nil || len(c.Tags) != 1 || len(c.Manifests) != 1 {
		t.Errorf("imagehub/kept after deleting v1: %+v, %v", c, err)
	}
	// The config blob is shared by all three; the layers and manifests of
	// two are garbage.
	want := []testImage{gone, old}
	dry, err := admin.CollectGarbage(ctx, true)
	if err != nil || dry.Blobs != 2*len(want) {
		t.Fatalf("dry run: %+v, %v; want %d blobs", dry, err, 2*len(want))
	}
	var wantBytes int64
	for _, img := range want {
		wantBytes += int64(len(img.layer) + len(img.manifest))
	}
	if dry.Bytes != wantBytes {
		t.Errorf("dry run frees %d bytes, want %d", dry.Bytes, wantBytes)
	}
	if files := blobFiles(t, dir); !files[digestOf(gone.layer)] {
		t.Fatal("the dry run deleted a blob")
	}
	res, err := admin.CollectGarbage(ctx, false)
	if err != nil || res != dry {
		t.Fatalf("collect: %+v, %v; want what the dry run said, %+v", res, err, dry)
	}
	files := blobFiles(t, dir)
	for _, img := range want {
		if files[digestOf(img.layer)] || files[digestOf(img.manifest)] {
			t.Errorf("a blob of a deleted manifest is still on disk")
		}
	}
	for _, b := range [][]byte{kept.config, kept.layer, kept.manifest} {
		if !files[digestOf(b)] {
			t.Errorf("blob %s of the kept image was deleted", digestOf(b))
		}
	}
	base := "http://" + reg.Addr() + "/v2/imagehub/kept/"
	if res, body := send(t, puller, http.MethodGet, base+"manifests/v2", nil, map[string]string{"Accept": ociManifest}); res.StatusCode != http.StatusOK || digestOf(body) != digestOf(kept.manifest) {
		t.Errorf("the kept image's manifest: %d", res.StatusCode)
	}
	if res, body := send(t, puller, http.MethodGet, base+"blobs/"+digestOf(kept.layer), nil, nil); res.StatusCode != http.StatusOK || string(body) != string(kept.layer) {
		t.Errorf("the kept image's layer: %d", res.StatusCode)
	}
	if res, _ := send(t, puller, http.MethodGet, base+"manifests/v1", nil, map[string]string{"Accept": ociManifest}); res.StatusCode != http.StatusNotFound {
		t.Errorf("the deleted tag answers %d, want 404", res.StatusCode)
	}
	if res, err := admin.CollectGarbage(ctx, true); err != nil || res.Blobs != 0 {
		t.Errorf("a dry run after the collection: %+v, %v; want nothing left to free", res, err)
	}
	if err := admin.Delete(ctx, "not a repository", nil, nil); err == nil || !strings.Contains(err.Error(), "repository") {
		t.Errorf("a bad repository name: %v", err)
	}
}
