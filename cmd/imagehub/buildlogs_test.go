package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"imagehub/store"
)

// TestOrphanBuildLogsRemoved removes, at start-up, the build folders of
// builds the store no longer has, and keeps those of its builds and
// anything that is not a build's folder.
func TestOrphanBuildLogsRemoved(t *testing.T) {
	dir := t.TempDir()
	_, st, err := openDataDir(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	r := store.Recipe{BaseImage: "r/base:1"}
	if err := st.CreateImage(ctx, &store.Image{DisplayName: "custom", Type: store.TypeCPU, Global: true, Recipe: &r}); err != nil {
		t.Fatal(err)
	}
	b, err := st.CreateBuild(ctx, "custom", r, "t")
	if err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(dir, "builds")
	kept := []string{"1", "notes", "007"}
	for _, name := range append([]string{"2", "99"}, kept...) {
		if err := os.MkdirAll(filepath.Join(logs, name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if b.ID != 1 {
		t.Fatalf("the build is #%d, want #1", b.ID)
	}
	if err := removeOrphanBuildLogs(ctx, st, logs, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(logs)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != 3 || got[0] != "007" || got[1] != "1" || got[2] != "notes" {
		t.Errorf("left %v, want [007 1 notes]", got)
	}
	if err := removeOrphanBuildLogs(ctx, st, filepath.Join(dir, "none"), slog.Default()); err != nil {
		t.Errorf("no builds folder yet: %v", err)
	}
}
