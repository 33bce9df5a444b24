package store_test

import (
	"context"
	"strings"
	"testing"

	"imagehub/store"
)

// TestPasswordsOver72Bytes: bcrypt reads 72 bytes of a password, so no
// longer one is set (counted in bytes: 37 "é" are 74) and none signs in,
// even when its first 72 bytes are the password.
func TestPasswordsOver72Bytes(t *testing.T) {
	s, ctx := open(t), context.Background()
	const want = "At most 72 bytes: bcrypt ignores the rest."
	for _, pw := range []string{strings.Repeat("a", 73), strings.Repeat("é", 37)} {
		err := s.CreateUser(ctx, &store.User{Username: "ann", Password: pw})
		if got := store.ErrorFields(err)["password"]; got != want {
			t.Errorf("create with %d bytes: %v, want %q at password", len(pw), err, want)
		}
	}
	if n, _ := s.CountUsers(ctx); n != 0 {
		t.Fatalf("%d users after refusals, want 0", n)
	}
	full := strings.Repeat("é", 36) // 72 bytes
	mustNoErr(t, s.CreateUser(ctx, &store.User{Username: "ann", Password: full}))
	if err := s.SetPassword(ctx, "ann", full+"x"); store.ErrorFields(err)["password"] != want {
		t.Errorf("set 74 bytes: %v, want %q at password", err, want)
	}
	for _, wrong := range []string{full + "x", full + full, full + "é"} {
		if _, err := s.Authenticate(ctx, "ann", wrong); store.ErrorCode(err) != store.EUNAUTHORIZED {
			t.Errorf("sign-in with the password and %d bytes more: %v, want refused", len(wrong)-len(full), err)
		}
	}
	if _, err := s.Authenticate(ctx, "ann", full); err != nil {
		t.Errorf("sign-in with the 72-byte password: %v", err)
	}
	// The shortest: 8 characters, however many bytes they take.
	if err := s.SetPassword(ctx, "ann", "ééééééé"); store.ErrorFields(err)["password"] == "" {
		t.Error("7 characters in 14 bytes were accepted")
	}
}

// TestImageGroupNamesAreCheckedAsWritten: a blank or unknown group name is
// refused when an image is saved, global or not, and a name listed twice
// is granted once.
func TestImageGroupNamesAreCheckedAsWritten(t *testing.T) {
	s, ctx := open(t), context.Background()
	mustNoErr(t, s.CreateGroup(ctx, &store.Group{Name: "a"}))
	cases := []struct {
		groups []string
		global bool
		want   string
	}{
		{[]string{""}, false, "A group name is blank."},
		{[]string{"a", "\t"}, false, "A group name is blank."},
		{[]string{" a"}, false, `Unknown group " a".`},
		{[]string{"nope"}, true, `Unknown group "nope".`},
		{[]string{"x", "a", "y"}, false, `Unknown groups "x", "y".`},
	}
	for _, tc := range cases {
		img := &store.Image{DisplayName: "img", Type: store.TypeCPU, URL: "r/img:1", Global: tc.global, Groups: tc.groups}
		if got := store.ErrorFields(s.CreateImage(ctx, img))["groups"]; got != tc.want {
			t.Errorf("groups %q (global %v): %q, want %q", tc.groups, tc.global, got, tc.want)
		}
		if got := store.ErrorFields(s.CheckGroupNames(ctx, tc.groups))["groups"]; got != tc.want {
			t.Errorf("CheckGroupNames(%q) = %q, want %q", tc.groups, got, tc.want)
		}
	}
	if _, n, _ := s.ListImages(ctx, store.ImageFilter{}); n != 0 {
		t.Fatalf("%d images after refusals, want 0", n)
	}
	img := &store.Image{DisplayName: "img", Type: store.TypeCPU, URL: "r/img:1", Groups: []string{"a", "a"}}
	mustNoErr(t, s.CreateImage(ctx, img))
	if got, _ := s.FindImage(ctx, "img"); len(got.Groups) != 1 || len(img.Groups) != 1 {
		t.Errorf("a group listed twice: stored %q, answered %q; want it once", got.Groups, img.Groups)
	}
}
