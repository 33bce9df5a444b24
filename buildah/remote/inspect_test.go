package remote_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/remote"
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
		{
			// A built image's URL: the tag for people, the digest for pulls.
			in:   "127.0.0.1:5000/imagehub/app:0123456789ab@sha256:0000000000000000000000000000000000000000000000000000000000000000",
			want: "127.0.0.1:5000/imagehub/app:0123456789ab@sha256:0000000000000000000000000000000000000000000000000000000000000000",
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
			got, err := remote.NormalizeReference(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("remote.NormalizeReference(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("remote.NormalizeReference(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestPullReference(t *testing.T) {
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	tests := []struct{ in, want string }{
		{"127.0.0.1:5000/imagehub/app:0123456789ab@" + digest, "127.0.0.1:5000/imagehub/app@" + digest},
		{"docker.io/library/alpine:3@" + digest, "docker.io/library/alpine@" + digest},
		{"docker.io/library/alpine@" + digest, "docker.io/library/alpine@" + digest},
		{"docker.io/library/alpine:3", "docker.io/library/alpine:3"},
		{"not a reference", "not a reference"},
	}
	for _, tt := range tests {
		if got := remote.PullReference(tt.in); got != tt.want {
			t.Errorf("PullReference(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestInspectErrors(t *testing.T) {
	t.Run("unreachable registry", func(t *testing.T) {
		start := time.Now()
		_, err := remote.Inspect(context.Background(), "127.0.0.1:1/x/y:z", nil, true)
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("Inspect on a closed port = %v, want connection refused", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
		if _, _, err := remote.TagExists(context.Background(), "127.0.0.1:1/x/y:z", nil, true); err == nil {
			t.Error("TagExists on a closed port says the tag is missing instead of failing")
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		// A loopback listener that accepts and never answers: only the
		// deadline ends the wait (tests send packets to 127.0.0.0/8 only).
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := remote.Inspect(ctx, ln.Addr().String()+"/x/y:z", nil, true); err == nil {
			t.Error("Inspect of an unroutable registry succeeded")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Inspect ignored its context: took %s", d)
		}
	})
	t.Run("malformed reference", func(t *testing.T) {
		if _, err := remote.Inspect(context.Background(), "Not A Ref", nil, true); err == nil {
			t.Error("Inspect of a malformed reference succeeded")
		}
	})
	t.Run("unknown manifest", func(t *testing.T) {
		reg := buildtest.Registry(t, "")
		_, err := remote.Inspect(context.Background(), reg.Addr()+"/nothing/here:1", nil, true)
		if err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("Inspect of a missing image = %v, want the registry's 'unknown' error", err)
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		reg := buildtest.Registry(t, buildtest.Htpasswd(t, "u", "inspect-pw-123"))
		_, err := remote.Inspect(context.Background(), reg.Addr()+"/a/b:c", &remote.Auth{Username: "u", Password: "wrong-pw-5d1"}, true)
		if err == nil || strings.Contains(err.Error(), "wrong-pw-5d1") {
			t.Errorf("Inspect with a wrong password = %v", err)
		}
	})
}

func TestPinDigest(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for in, want := range map[string]string{
		"busybox":                         "docker.io/library/busybox@" + d,
		"127.0.0.1:5000/team/base:1":      "127.0.0.1:5000/team/base@" + d,
		"127.0.0.1:5000/team/base:1@" + d: "127.0.0.1:5000/team/base@" + d,
		"quay.io/org/img@sha256:" + d[7:]: "quay.io/org/img@" + d,
	} {
		if got, err := remote.PinDigest(in, d); err != nil || got != want {
			t.Errorf("PinDigest(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := remote.PinDigest("busybox", ""); err == nil {
		t.Error("PinDigest without a digest succeeded")
	}
}
