package mounts

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDiskUsageCountsBlocksAndHardLinksOnce(t *testing.T) {
	dir := t.TempDir()
	if got, err := DiskUsage(filepath.Join(dir, "missing")); got != 0 || err != nil {
		t.Fatalf("a missing folder: %d, %v; want 0, nil", got, err)
	}
	empty, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i) // not sparse
	}
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "b", "one"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a", "b", "one"), filepath.Join(dir, "a", "link")); err != nil {
		t.Fatal(err)
	}
	got, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// One MiB of data, counted once, and a few blocks of folders.
	if grew := got - empty; grew < 1<<20 || grew > 1<<20+64<<10 {
		t.Errorf("usage grew by %d bytes for one MiB written and hard-linked, want about one MiB", grew)
	}
}

func TestFreeSpace(t *testing.T) {
	free, err := FreeSpace(t.TempDir())
	if err != nil || free <= 0 {
		t.Errorf("FreeSpace = %d, %v; want a positive number", free, err)
	}
	if _, err := FreeSpace(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("FreeSpace of a missing path did not fail")
	}
}
