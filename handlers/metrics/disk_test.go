package metrics

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const fileSize = 64 << 10

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), fileSize), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDiskUsed counts the blocks of what is below a folder: a second link to
// a file adds nothing, a second file adds its size, a missing path nothing.
func TestDiskUsed(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a", "b", "one"))
	first := diskUsed([]string{dir})
	if first < fileSize {
		t.Fatalf("%d bytes with a file of %d", first, fileSize)
	}
	if err := os.Link(filepath.Join(dir, "a", "b", "one"), filepath.Join(dir, "a", "linked")); err != nil {
		t.Fatal(err)
	}
	if got := diskUsed([]string{dir}); got != first {
		t.Errorf("%d bytes after a hard link, want %d as before", got, first)
	}
	writeFile(t, filepath.Join(dir, "two"))
	if got := diskUsed([]string{dir}); got < first+fileSize {
		t.Errorf("%d bytes after a second file, want at least %d", got, first+fileSize)
	}
	if got := diskUsed([]string{filepath.Join(dir, "missing")}); got != 0 {
		t.Errorf("a missing folder uses %d bytes", got)
	}
	if got := diskUsed([]string{filepath.Join(dir, "two")}); got < fileSize {
		t.Errorf("a file alone uses %d bytes, want at least %d", got, fileSize)
	}
}

// TestDiskUsageIsKept: the figures are kept until they are old enough, then
// measured again.
func TestDiskUsageIsKept(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "one"))
	d := newDiskUsage(map[string][]string{"part": {dir}}, time.Hour, 5*time.Second)
	first := d.current()["part"]
	if first < fileSize {
		t.Fatalf("first figure %d, want at least %d", first, fileSize)
	}
	writeFile(t, filepath.Join(dir, "two"))
	if got := d.current()["part"]; got != first {
		t.Errorf("within the hour: %d, want the kept %d", got, first)
	}
	d.mu.Lock()
	d.measured = d.measured.Add(-time.Hour)
	d.mu.Unlock()
	if got := d.current()["part"]; got < first+fileSize {
		t.Errorf("an hour later: %d, want at least %d", got, first+fileSize)
	}
}

// TestDiskUsedStaysOnItsFileSystem: a file system mounted below a part (a
// running build's) is not counted. It needs the right to mount.
func TestDiskUsedStaysOnItsFileSystem(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mounted")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	// The folder mounted on is hidden by the mount, and not counted.
	before := diskUsed([]string{dir}) - diskUsed([]string{mnt})
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	writeFile(t, filepath.Join(mnt, "inside"))
	if got := diskUsed([]string{mnt}); got < fileSize {
		t.Fatalf("the mounted file system alone: %d bytes, want at least %d", got, fileSize)
	}
	if got := diskUsed([]string{dir}); got != before {
		t.Errorf("%d bytes with a file system mounted below, want %d, that of what is not mounted", got, before)
	}
}
