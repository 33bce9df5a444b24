package store

import (
	"context"
	"path/filepath"
	"strings"
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

// TestMigrationBuildIDsAutoincrement opens a database whose builds table
// predates AUTOINCREMENT: the rows keep their ids, the indexes and the
// cascade from images stay, the next id follows the largest one kept, and
// ids freed by a delete afterwards are never given again.
func TestMigrationBuildIDsAutoincrement(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagehub.db")
	old, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := Recipe{BaseImage: "r/base:1"}
	for _, name := range []string{"keep", "gone"} {
		if err := old.CreateImage(ctx, &Image{DisplayName: name, Type: TypeCPU, Global: true, Recipe: &r}); err != nil {
			t.Fatal(err)
		}
	}
	// Make the table of 001 and 002 again, with builds 1 and 2.
	for _, q := range []string{
		`DROP TABLE builds`,
		`DELETE FROM sqlite_sequence WHERE name = 'builds'`,
		`DELETE FROM migrations WHERE name = 'migrations/003_build_ids_never_reused.sql'`,
		// The later migrations that change builds run again after 003.
		`DELETE FROM migrations WHERE name = 'migrations/007_build_retention.sql'`,
		`DELETE FROM migrations WHERE name = 'migrations/011_base_digest.sql'`,
		`CREATE TABLE builds (id INTEGER PRIMARY KEY, image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
			status TEXT NOT NULL, recipe TEXT NOT NULL, target_image TEXT NOT NULL DEFAULT '', digest TEXT NOT NULL DEFAULT '',
			error TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT)`,
		`CREATE INDEX builds_image ON builds(image_id, id)`,
		`CREATE INDEX builds_status ON builds(status, id)`,
		`CREATE UNIQUE INDEX builds_one_active ON builds(image_id) WHERE status IN ('queued', 'running', 'pushing')`,
		`INSERT INTO builds (id, image_id, status, recipe, digest, created_at, finished_at)
			SELECT 1, id, 'succeeded', '{}', 'sha256:1', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:01:00.000000Z' FROM images WHERE name = 'keep'`,
		`INSERT INTO builds (id, image_id, status, recipe, created_at) SELECT 2, id, 'queued', '{}', '2025-01-01T00:02:00.000000Z' FROM images WHERE name = 'keep'`,
	} {
		if _, err := old.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()

	s, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatalf("migrating: %v", err)
	}
	defer s.Close()
	var table string
	if err := s.db.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'builds'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "AUTOINCREMENT") || !strings.Contains(table, "REFERENCES images(id) ON DELETE CASCADE") {
		t.Errorf("builds after the migration:\n%s", table)
	}
	for _, index := range []string{"builds_image", "builds_status", "builds_one_active"} {
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'builds' AND name = ?`, index).Scan(&n); err != nil || n != 1 {
			t.Errorf("index %s: %d, %v", index, n, err)
		}
	}
	if b, err := s.FindBuild(ctx, 1); err != nil || b.Image != "keep" || b.Digest != "sha256:1" || b.Status != BuildSucceeded || b.FinishedAt == nil {
		t.Errorf("build 1 after the migration: %+v, %v", b, err)
	}
	if _, err := s.CreateBuild(ctx, "keep", r, "t"); ErrorCode(err) != ECONFLICT {
		t.Errorf("a second active build of keep: %v, want the conflict of builds_one_active", err)
	}
	b3, err := s.CreateBuild(ctx, "gone", r, "t")
	if err != nil || b3.ID != 3 {
		t.Fatalf("the first build after the migration: %+v, %v; want #3", b3, err)
	}
	if err := s.FinishBuild(ctx, 3, BuildCancelled, "", "x"); err != nil { // an image is deleted once its build ended
		t.Fatal(err)
	}
	if err := s.DeleteImage(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindBuild(ctx, 3); ErrorCode(err) != ENOTFOUND {
		t.Errorf("build 3 after deleting its image: %v, want it gone", err)
	}
	if err := s.FinishBuild(ctx, 2, BuildCancelled, "", "x"); err != nil {
		t.Fatal(err)
	}
	if b4, err := s.CreateBuild(ctx, "keep", r, "t"); err != nil || b4.ID != 4 {
		t.Errorf("the build after #3 was deleted: %+v, %v; want #4", b4, err)
	}
}

// TestMigrationRenamesGroupSystem opens a database with a group named
// "system" (allowed before the name was reserved): it gets a name of its
// own and keeps its members and own images.
func TestMigrationRenamesGroupSystem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagehub.db")
	old, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := old.CreateUser(ctx, &User{Username: "ann", Password: "password1"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM migrations WHERE name = 'migrations/004_no_group_named_system.sql'`,
		`INSERT INTO groups (id, name, created_at) VALUES (7, 'system', '2025-01-01T00:00:00.000000Z')`,
		`INSERT INTO memberships (group_id, user_id, role) SELECT 7, id, 'admin' FROM users WHERE username = 'ann'`,
		// The store took an owner "system" for System, so only SQL can make the group's own image.
		`INSERT INTO images (name, display_name, type, url, url_for_gpu, owner_group, created_at, updated_at)
			VALUES ('own', 'own', 'cpu', 'r/own:1', 'r/own:1', 7, '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z')`,
		`INSERT INTO image_groups (image_id, group_id) SELECT id, 7 FROM images WHERE name = 'own'`,
	} {
		if _, err := old.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()

	s, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatalf("migrating: %v", err)
	}
	defer s.Close()
	if _, err := s.FindGroup(ctx, "system"); ErrorCode(err) != ENOTFOUND {
		t.Errorf("a group named system after the migration: %v", err)
	}
	u, err := s.FindUser(ctx, "ann")
	if err != nil || !u.Administers("system-group-7") {
		t.Errorf("ann after the migration: %+v, %v; want the group admin of system-group-7", u, err)
	}
	if img, err := s.FindImage(ctx, "own"); err != nil || img.Owner != "system-group-7" {
		t.Errorf("the group's own image after the migration: %+v, %v", img, err)
	}
}
