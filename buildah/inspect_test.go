package buildah

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInspectNormalizeReference(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  string
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest"},
		{in: "  python:3.12 ", want: "docker.io/library/python:3.12"},
		{in: "jupyter/base-notebook", want: "docker.io/jupyter/base-notebook:latest"},
		{in: "quay.io/org/img:v1.2", want: "quay.io/org/img:v1.2"},
		{in: "localhost:5000/team/img", want: "localhost:5000/team/img:latest"},
		{in: "127.0.0.1:5000/x:Tag_1", want: "127.0.0.1:5000/x:Tag_1"},
		{
			in:   "alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000",
			want: "docker.io/library/alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000",
		},
		{in: "", wantErr: "is required"},
		{in: "   ", wantErr: "is required"},
		{in: "Busybox", wantErr: "lowercase"},
		{in: "docker.io/Library/python", wantErr: "lowercase"},
		{in: "python 3", wantErr: "spaces"},
		{in: "python:3 ", want: "docker.io/library/python:3"},
		{in: "python:", wantErr: "not a valid image reference"},
		{in: "python:-bad", wantErr: "not a valid image reference"},
		{in: "python@sha256:abc", wantErr: "digest"},
		{in: "http://registry/x", wantErr: "not a valid image reference"},
		{in: "a/" + strings.Repeat("b", 300), wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeReference(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NormalizeReference(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormalizeReference(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestInspectPushedImage(t *testing.T) {
	needRoot(t)
	reg := newTestRegistry(t, "")
	ref, digest := pushTestBase(t, reg, newTestStorage(t), testBase{name: "inspect/busybox", user: "1000"})

	info, err := Inspect(context.Background(), ref, nil, true)
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
	skopeoDigest, arch, osName := skopeoInspect(t, ref, nil)
	if skopeoDigest != digest || arch != "amd64" || osName != "linux" {
		t.Errorf("skopeo sees %s %s/%s, want %s linux/amd64", skopeoDigest, osName, arch, digest)
	}

	t.Run("TagExists", func(t *testing.T) {
		got, ok, err := TagExists(context.Background(), ref, nil, true)
		if err != nil || !ok || got != digest {
			t.Errorf("TagExists(existing) = %q, %v, %v; want %s", got, ok, err, digest)
		}
		for _, missing := range []string{reg.Addr() + "/inspect/busybox:other", reg.Addr() + "/no/such/repo:x"} {
			got, ok, err := TagExists(context.Background(), missing, nil, true)
			if err != nil || ok || got != "" {
				t.Errorf("TagExists(%s) = %q, %v, %v; want not found", missing, got, ok, err)
			}
		}
	})

	t.Run("ManifestList", func(t *testing.T) {
		armDigest := putVariant(t, reg.Addr(), "inspect/busybox", digest)
		listRef := putIndex(t, reg.Addr(), "inspect/busybox", "multi", digest, armDigest)
		list, err := Inspect(context.Background(), listRef, nil, true)
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

func TestInspectErrors(t *testing.T) {
	t.Run("unreachable registry", func(t *testing.T) {
		start := time.Now()
		_, err := Inspect(context.Background(), "127.0.0.1:1/x/y:z", nil, true)
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("Inspect on a closed port = %v, want connection refused", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
		if _, _, err := TagExists(context.Background(), "127.0.0.1:1/x/y:z", nil, true); err == nil {
			t.Error("TagExists on a closed port says the tag is missing instead of failing")
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		// 192.0.2.0/24 (TEST-NET-1) is never routed: only the deadline ends the wait.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := Inspect(ctx, "192.0.2.1/x/y:z", nil, false); err == nil {
			t.Error("Inspect of an unroutable registry succeeded")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Inspect ignored its context: took %s", d)
		}
	})
	t.Run("malformed reference", func(t *testing.T) {
		if _, err := Inspect(context.Background(), "Not A Ref", nil, true); err == nil {
			t.Error("Inspect of a malformed reference succeeded")
		}
	})
	t.Run("unknown manifest", func(t *testing.T) {
		reg := newTestRegistry(t, "")
		_, err := Inspect(context.Background(), reg.Addr()+"/nothing/here:1", nil, true)
		if err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("Inspect of a missing image = %v, want the registry's 'unknown' error", err)
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		reg := newTestRegistry(t, writeHtpasswd(t, "u", "inspect-pw-123"))
		_, err := Inspect(context.Background(), reg.Addr()+"/a/b:c", &Auth{Username: "u", Password: "wrong-pw-5d1"}, true)
		if err == nil || strings.Contains(err.Error(), "wrong-pw-5d1") {
			t.Errorf("Inspect with a wrong password = %v", err)
		}
	})
}
