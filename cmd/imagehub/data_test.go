package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"imagehub/store"
)

// TestDataFolderIsPrivate opens a data folder made open to others, with a
// database and WAL files readable by others: the folder becomes 0711 and
// the database and its -wal and -shm files 0600; a new folder is made so.
func TestDataFolderIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	for _, existing := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "data")
		if existing {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, 0o755)
			for _, f := range []string{"imagehub.db", "imagehub.db-wal", "imagehub.db-shm"} {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, st, err := openDataDir(dir)
		if err != nil {
			t.Fatalf("existing %v: %v", existing, err)
		}
		// A write, so that SQLite has made its -wal and -shm files.
		if err := st.CreateGroup(context.Background(), &store.Group{Name: "team"}); err != nil {
			t.Fatal(err)
		}
		want := map[string]os.FileMode{"": 0o711, "imagehub.db": 0o600, "imagehub.db-wal": 0o600, "imagehub.db-shm": 0o600, "secret.key": 0o600}
		for name, mode := range want {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Errorf("existing %v: %s: %v", existing, name, err)
			} else if fi.Mode().Perm() != mode {
				t.Errorf("existing %v: %q is %v, want %v", existing, name, fi.Mode().Perm(), mode)
			}
		}
		st.Close()
	}
}
