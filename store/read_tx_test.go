package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"imagehub/store"
)

// TestReadsDoNotWaitForAWriter: while another connection holds the write
// lock in a transaction, the store's reads answer from the last commit (WAL
// mode) instead of queuing behind the writer until the busy timeout and
// failing with "database is locked".
func TestReadsDoNotWaitForAWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagehub.db")
	s, err := store.Open(path, make([]byte, 32))
	mustNoErr(t, err)
	defer s.Close()
	ctx := context.Background()
	mustNoErr(t, s.CreateUser(ctx, &store.User{Username: "alice", Password: "alice-password-1"}))
	mustNoErr(t, s.CreateGroup(ctx, &store.Group{Name: "team", DisplayName: "Team"}))
	mustNoErr(t, s.SetMember(ctx, "team", "alice", store.RoleMember))
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "seen", Type: store.TypeCPU, URL: "docker.io/library/busybox:1.36", Global: true}))

	other, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	mustNoErr(t, err)
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	mustNoErr(t, err)
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO groups (name, created_at) VALUES ('uncommitted', '2026-01-01')`)
	mustNoErr(t, err)

	u, err := s.FindUser(ctx, "alice")
	if err != nil || len(u.Groups) != 1 {
		t.Fatalf("FindUser during a write: %+v, %v", u, err)
	}
	if imgs, total, err := s.ListImages(ctx, store.ImageFilter{Limit: 20}); err != nil || total != 1 || len(imgs) != 1 {
		t.Errorf("ListImages during a write: %d of %d, %v", len(imgs), total, err)
	}
	if imgs, err := s.Selection(ctx, "alice"); err != nil || len(imgs) != 1 {
		t.Errorf("Selection during a write: %d images, %v", len(imgs), err)
	}
	if groups, err := s.ListGroups(ctx); err != nil || len(groups) != 1 {
		t.Errorf("ListGroups during a write sees %d groups (the uncommitted one is not one of them), %v", len(groups), err)
	}
}
