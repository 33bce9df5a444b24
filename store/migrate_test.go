package store

import (
	"context"
	"path/filepath"
	"testing"
)

// TestMigrationOneActiveBuild opens a database made before the index
// builds_one_active, holding two queued builds of one image (as two parallel
// rebuilds could leave it): the migration cancels the older one and keeps
// the newer one queued.
func TestMigrationOneActiveBuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagehub.db")
	old, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := Recipe{BaseImage: "r/base:1"}
	if err := old.CreateImage(ctx, &Image{DisplayName: "custom", Type: TypeCPU, Global: true, Recipe: &r}); err != nil {
		t.Fatal(err)
	}
	// Undo the migration, then queue twins as the old handlers could.
	for _, q := range []string{
		`DROP INDEX builds_one_active`,
		`DELETE FROM migrations WHERE name = 'migrations/002_one_active_build.sql'`,
		`INSERT INTO builds (image_id, status, recipe, created_at) SELECT id, 'queued', '{}', '2025-01-01T00:00:00.000000Z' FROM images`,
		`INSERT INTO builds (image_id, status, recipe, created_at) SELECT id, 'queued', '{}', '2025-01-01T00:00:01.000000Z' FROM images`,
	} {
		if _, err := old.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()

	s, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatalf("migrating a database with twin builds: %v", err)
	}
	defer s.Close()
	first, err := s.FindBuild(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != BuildCancelled || first.FinishedAt == nil || first.FinishedAt.IsZero() || first.Error == "" {
		t.Errorf("the older twin: %+v, want cancelled with a time and a reason", first)
	}
	if second, _ := s.FindBuild(ctx, 2); second.Status != BuildQueued {
		t.Errorf("the newer twin is %s, want queued", second.Status)
	}
}
