package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/worker"
	"imagehub/buildah/workerspec"
)

// storeImageNames lists the names of the images in the server's layer cache.
func storeImageNames(t *testing.T, data string) []string {
	t.Helper()
	st, err := worker.OpenStore(workerspec.Storage{GraphRoot: filepath.Join(data, "storage"), RunRoot: filepath.Join(data, "storage-run")})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Shutdown(false)
	images, err := st.Images()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range images {
		names = append(names, img.Names...)
	}
	return names
}

// TestDiskIsBounded runs a server that keeps one build per image: a rebuild
// takes the older build's tag and log away; a deleted image loses its tags
// and its images in the layer cache, and the garbage collection asked for
// through the API frees its blobs in the registry's folder while the other
// image still pulls.
func TestDiskIsBounded(t *testing.T) {
	needRoot(t)
	s := &server{t: t, data: filepath.Join(buildtest.TraversableDir(t), "data"), addr: freeAddr(t), regAdr: freeAddr(t),
		args: []string{"--keep-builds", "1", "--gc-interval", "0"}}
	s.start()
	base := pushBase(t, s)
	_, pull := s.registryAccounts()

	first := s.createCustomImage("e2e-kept", map[string]string{"baseImage": base, "pip": "six"})
	first = s.waitBuild(first.ID, 3*time.Minute, "succeeded", "failed")
	var second apiBuild
	if code := s.api("POST", "/images/e2e-kept/rebuild", map[string]string{"baseImage": base, "pip": "requests"}, &second); code != http.StatusAccepted {
		t.Fatalf("rebuild: %d", code)
	}
	second = s.waitBuild(second.ID, 3*time.Minute, "succeeded", "failed")
	if first.Status != "succeeded" || second.Status != "succeeded" {
		t.Fatalf("builds %+v and %+v\n%s", first, second, s.out)
	}
	if out, err := skopeo("inspect", pull, "docker://"+first.TargetImage); err == nil {
		t.Errorf("the older build's tag %s still pulls: %s", first.TargetImage, out)
	}
	var old struct {
		PrunedAt *time.Time `json:"prunedAt"`
	}
	if s.api("GET", fmt.Sprintf("/builds/%d", first.ID), nil, &old); old.PrunedAt == nil {
		t.Error("the older build is not marked pruned")
	}
	if code := s.api("GET", fmt.Sprintf("/builds/%d/log", first.ID), nil, nil); code != http.StatusNotFound {
		t.Errorf("the older build's log answers %d, want 404", code)
	}

	gone := s.createCustomImage("e2e-gone", map[string]string{"baseImage": base, "pip": "numpy"})
	gone = s.waitBuild(gone.ID, 3*time.Minute, "succeeded", "failed")
	if gone.Status != "succeeded" {
		t.Fatalf("build %+v\n%s", gone, s.log(gone.ID))
	}
	if names := strings.Join(storeImageNames(t, s.data), " "); !strings.Contains(names, "/imagehub/e2e-gone:") {
		t.Fatalf("the built image is not in the layer cache: %s", names)
	}
	registryDir := filepath.Join(s.data, "registry")
	if !buildtest.RegistryBlobs(t, registryDir)[gone.Digest] {
		t.Fatalf("the pushed manifest %s is not in the registry's folder", gone.Digest)
	}
	if code := s.api("DELETE", "/images/e2e-gone", nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if out, err := skopeo("inspect", pull, "docker://"+gone.TargetImage); err == nil {
		t.Errorf("the deleted image's tag still pulls: %s", out)
	}
	var report struct {
		Reclaimable struct{ Blobs int } `json:"reclaimable"`
		LastGC      *struct {
			Freed struct{ Blobs int } `json:"freed"`
			Error string              `json:"error"`
		} `json:"lastGc"`
	}
	if s.api("GET", "/disk", nil, &report); report.Reclaimable.Blobs == 0 || report.LastGC != nil {
		t.Fatalf("before the collection: %+v, want blobs to free and no collection yet", report)
	}
	if code := s.api("POST", "/disk/gc", nil, nil); code != http.StatusAccepted {
		t.Fatalf("collect: %d", code)
	}
	deadline := time.Now().Add(time.Minute)
	for s.api("GET", "/disk", nil, &report); report.LastGC == nil; s.api("GET", "/disk", nil, &report) {
		if time.Now().After(deadline) {
			t.Fatalf("no garbage collection after a minute:\n%s", s.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if report.LastGC.Error != "" || report.LastGC.Freed.Blobs == 0 {
		t.Errorf("the collection: %+v", report.LastGC)
	}
	blobs := buildtest.RegistryBlobs(t, registryDir)
	if blobs[gone.Digest] {
		t.Error("the deleted image's manifest is still in the registry's folder")
	}
	if !blobs[second.Digest] || skopeoDigest(t, second.TargetImage, pull) != second.Digest {
		t.Error("the kept image no longer pulls")
	}
	// The layer cache forgets the deleted image at its next clean-up, which
	// follows the delete since no build runs.
	for {
		names := strings.Join(storeImageNames(t, s.data), " ")
		if !strings.Contains(names, "/imagehub/e2e-gone:") {
			if !strings.Contains(names, "/imagehub/e2e-kept:") {
				t.Errorf("the kept image left the layer cache too: %s", names)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted image is still in the layer cache: %s\n%s", names, s.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
