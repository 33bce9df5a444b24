package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imagehub/buildah/buildtest"
)

// apiBase is what an image's JSON says of its base.
type apiBase struct {
	BaseDigest          string `json:"baseDigest"`
	BaseLatestDigest    string `json:"baseLatestDigest"`
	BaseUpdateAvailable bool   `json:"baseUpdateAvailable"`
}

// TestBaseMovedThroughServer follows a base image that moves, with real
// builds: the build records the digest it built on; a new image pushed to
// the base's tag is found by the periodic check (every second here) and
// by the API's; a rebuild of the same recipe is not "up to date" but builds
// on the new base, and its success clears the mark; the next rebuild is up
// to date again.
func TestBaseMovedThroughServer(t *testing.T) {
	needRoot(t)
	s := &server{t: t, data: filepath.Join(buildtest.TraversableDir(t), "data"), addr: freeAddr(t), regAdr: freeAddr(t),
		args: []string{"--base-check-interval", "1s"}}
	s.start()
	base := pushBase(t, s)
	_, pull := s.registryAccounts()
	builtOn := skopeoDigest(t, base, pull)

	first := s.createCustomImage("e2e-base", map[string]string{"baseImage": base, "pip": "six"})
	if first = s.waitBuild(first.ID, 3*time.Minute, "succeeded", "failed"); first.Status != "succeeded" {
		t.Fatalf("first build %+v\n%s", first, s.log(first.ID))
	}
	var img apiBase
	if s.api("GET", "/images/e2e-base", nil, &img); img.BaseDigest != builtOn || img.BaseUpdateAvailable {
		t.Fatalf("after the first build: %+v, want built on %s, no mark", img, builtOn)
	}

	pushBase(t, s)
	moved := skopeoDigest(t, base, pull)
	if moved == builtOn {
		t.Fatal("pushing the base again did not move its tag")
	}
	deadline := time.Now().Add(time.Minute)
	for s.api("GET", "/images/e2e-base", nil, &img); !img.BaseUpdateAvailable; s.api("GET", "/images/e2e-base", nil, &img) {
		if time.Now().After(deadline) {
			t.Fatalf("the periodic check did not mark the image: %+v\n%s", img, s.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := s.api("POST", "/images/e2e-base/base-check", nil, &img); code != http.StatusOK || !img.BaseUpdateAvailable ||
		img.BaseDigest != builtOn || img.BaseLatestDigest != moved {
		t.Fatalf("base-check: %d %+v; want the mark, built on %s, now %s", code, img, builtOn, moved)
	}

	rebuild := func() apiBuild {
		t.Helper()
		var b apiBuild
		if code := s.api("POST", "/images/e2e-base/rebuild", nil, &b); code != http.StatusAccepted {
			t.Fatalf("rebuild: %d %+v", code, b)
		}
		if b = s.waitBuild(b.ID, 3*time.Minute, "succeeded", "failed"); b.Status != "succeeded" {
			t.Fatalf("rebuild %+v\n%s", b, s.log(b.ID))
		}
		return b
	}
	second := rebuild()
	log := s.log(second.ID)
	if second.TargetImage != first.TargetImage || second.Digest == first.Digest ||
		!strings.Contains(log, "moved since") || !strings.Contains(log, "@"+moved) {
		t.Errorf("the rebuild on the moved base: %+v (first %+v)\n%s", second, first, log)
	}
	if s.api("GET", "/images/e2e-base", nil, &img); img.BaseUpdateAvailable || img.BaseDigest != moved {
		t.Errorf("after the rebuild: %+v, want built on %s, no mark", img, moved)
	}
	third := rebuild()
	if log := s.log(third.ID); third.Digest != second.Digest || !strings.Contains(log, "is up to date") {
		t.Errorf("a rebuild on the unmoved base: %+v\n%s", third, log)
	}
	if s.api("GET", "/images/e2e-base", nil, &img); img.BaseUpdateAvailable || img.BaseDigest != moved {
		t.Errorf("after the up-to-date rebuild: %+v", img)
	}
	if !strings.Contains(s.out.String(), "checked the base images") {
		t.Errorf("the server's log shows no periodic check:\n%s", s.out)
	}
}
