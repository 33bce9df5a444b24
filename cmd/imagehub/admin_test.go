package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordsOver72BytesAreRefusedByTheCLI: `user add` and the bootstrap
// administrator refuse a password longer than bcrypt's 72 bytes, saying
// why, and create no user; 72 bytes are accepted.
func TestPasswordsOver72BytesAreRefusedByTheCLI(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	const reason = "At most 72 bytes: bcrypt ignores the rest."
	long := strings.Repeat("é", 37) // 37 characters, 74 bytes
	t.Setenv("IMAGEHUB_ADMIN_PASSWORD", long)
	_, st, err := openDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := bootstrapAdmin(ctx, st, io.Discard); err == nil || !strings.Contains(err.Error(), reason) {
		t.Errorf("bootstrap admin with 74 bytes: %v, want an error saying %q", err, reason)
	}
	t.Setenv("IMAGEHUB_PASSWORD", long)
	if err := userAddCmd(ctx, []string{"--data", dir, "--user", "bob"}, io.Discard); err == nil || !strings.Contains(err.Error(), reason) {
		t.Errorf("user add with 74 bytes: %v, want an error saying %q", err, reason)
	}
	if n, err := st.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("%d users (%v) after the refusals, want 0", n, err)
	}
	t.Setenv("IMAGEHUB_PASSWORD", strings.Repeat("é", 36))
	if err := userAddCmd(ctx, []string{"--data", dir, "--user", "bob"}, io.Discard); err != nil {
		t.Errorf("user add with 72 bytes: %v", err)
	}
}

// TestUserAddReadsTheWholeLine: a password given on standard input is the
// whole first line, spaces and all, and that password signs in.
func TestUserAddReadsTheWholeLine(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	t.Setenv("IMAGEHUB_PASSWORD", "")
	const password = "correct horse battery staple"
	in := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(in, []byte(password+"\nthe next line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = stdin }()
	if err := userAddCmd(ctx, []string{"--data", dir, "--user", "carol"}, io.Discard); err != nil {
		t.Fatalf("user add with a password holding spaces: %v", err)
	}
	_, st, err := openDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Authenticate(ctx, "carol", password); err != nil {
		t.Errorf("signing in with the whole line: %v", err)
	}
	if _, err := st.Authenticate(ctx, "carol", "correct"); err == nil {
		t.Error("the first word alone signs in")
	}
}
