package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/remote"
)

// What a worker pushed, read back through package remote and through skopeo.

func TestInspectPushedImage(t *testing.T) {
	buildtest.NeedRoot(t)
	reg := buildtest.Registry(t, "")
	ref, digest := pushTestBase(t, reg, newTestStorage(t), testBase{name: "inspect/busybox", user: "1000"})

	info, err := remote.Inspect(context.Background(), ref, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if info.Reference != ref || info.Digest != digest {
		t.Errorf("Inspect = %s %s, want %s %s", info.Reference, info.Digest, ref, digest)
	}
	if got, want := info.Platforms, []string{"linux/amd64"}; !slices.Equal(got, want) {
		t.Errorf("Platforms = %v, want %v", got, want)
	}
	if info.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("MediaType = %q", info.MediaType)
	}
	if info.Size < 500_000 {
		t.Errorf("Size = %d, want the size of a busybox layer (> 500 kB)", info.Size)
	}
	if info.User != "1000" {
		t.Errorf("User = %q, want 1000", info.User)
	}
	skopeoDigest, arch, osName := buildtest.SkopeoInspect(t, ref, nil)
	if skopeoDigest != digest || arch != "amd64" || osName != "linux" {
		t.Errorf("skopeo sees %s %s/%s, want %s linux/amd64", skopeoDigest, osName, arch, digest)
	}

	t.Run("TagExists", func(t *testing.T) {
		got, ok, err := remote.TagExists(context.Background(), ref, nil, true)
		if err != nil || !ok || got != digest {
			t.Errorf("remote.TagExists(existing) = %q, %v, %v; want %s", got, ok, err, digest)
		}
		for _, missing := range []string{reg.Addr() + "/inspect/busybox:other", reg.Addr() + "/no/such/repo:x"} {
			got, ok, err := remote.TagExists(context.Background(), missing, nil, true)
			if err != nil || ok || got != "" {
				t.Errorf("remote.TagExists(%s) = %q, %v, %v; want not found", missing, got, ok, err)
			}
		}
	})

	t.Run("ManifestList", func(t *testing.T) {
		armDigest := putVariant(t, reg.Addr(), "inspect/busybox", digest)
		listRef := putIndex(t, reg.Addr(), "inspect/busybox", "multi", digest, armDigest)
		list, err := remote.Inspect(context.Background(), listRef, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := list.Platforms, []string{"linux/amd64", "linux/arm64/v8"}; !slices.Equal(got, want) {
			t.Errorf("Platforms = %v, want %v", got, want)
		}
		if list.MediaType != "application/vnd.oci.image.index.v1+json" || list.Digest == digest {
			t.Errorf("list = %s %s", list.MediaType, list.Digest)
		}
		if list.Size != info.Size || list.User != "1000" {
			t.Errorf("list Size, User = %d %q; want those of the amd64 image, %d 1000", list.Size, list.User, info.Size)
		}
	})
}

// putIndex pushes an OCI index naming an amd64 and an arm64 manifest (the
// registry checks only that they exist) and returns its reference.
func putIndex(t *testing.T, addr, repo, tag, amd64, arm64 string) string {
	t.Helper()
	entry := func(digest, arch, variant string) map[string]any {
		p := map[string]any{"os": "linux", "architecture": arch}
		if variant != "" {
			p["variant"] = variant
		}
		return map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json",
			"digest":    digest, "size": len(getManifest(t, addr, repo, digest)), "platform": p,
		}
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []any{entry(amd64, "amd64", ""), entry(arm64, "arm64", "v8")},
	})
	putManifest(t, addr, repo, tag, "application/vnd.oci.image.index.v1+json", index)
	return addr + "/" + repo + ":" + tag
}

// putVariant pushes a copy of a manifest that differs by an annotation (so
// by digest), standing in for another platform's image, and returns its
// digest.
func putVariant(t *testing.T, addr, repo, digest string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(getManifest(t, addr, repo, digest), &m); err != nil {
		t.Fatal(err)
	}
	m["annotations"] = map[string]string{"test.platform": "arm64"}
	data, _ := json.Marshal(m)
	return putManifest(t, addr, repo, "arm", "application/vnd.oci.image.manifest.v1+json", data)
}

// putManifest uploads a manifest under a tag and returns its digest.
func putManifest(t *testing.T, addr, repo, tag, mediaType string, data []byte) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(data))
	req.Header.Set("Content-Type", mediaType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s: %s", tag, res.Status)
	}
	return res.Header.Get("Docker-Content-Digest")
}

// getManifest downloads a manifest by digest.
func getManifest(t *testing.T, addr, repo, digest string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/manifests/"+digest, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest %s: %s %v", digest, res.Status, err)
	}
	return data
}
