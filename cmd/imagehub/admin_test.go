package main

import (
	"context"
	"io"
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
