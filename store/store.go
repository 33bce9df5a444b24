// Package store keeps imagehub's state in one SQLite file: the domain types
// with their validation rules, and a concrete Store whose public methods each
// run in one transaction and call small private helpers.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is imagehub's database. It is safe for concurrent use.
type Store struct {
	// db writes: its transactions take the write lock at BEGIN.
	db *sql.DB
	// rdb reads, on read-only connections: its transactions are snapshots
	// that take no lock, so that readers wait neither for each other nor
	// for a writer (WAL).
	rdb    *sql.DB
	cipher *secretCipher
	// now is the clock, replaceable in tests.
	now func() time.Time
	// cat is the newest catalogue of images loaded (catalogue.go).
	cat catalogueCache
	// groupBuildLimit is how many builds of one group's images may wait or
	// run at once; zero means no limit (SetGroupBuildLimit).
	groupBuildLimit atomic.Int64
	// packageDefaults are the flags' package settings (SetPackageDefaults).
	packageDefaults atomic.Pointer[PackageSettings]
}

// Open opens (creating when needed) the SQLite file at path, applies the
// migrations that have not run yet, and uses key (32 bytes) to encrypt
// secrets at rest.
func Open(path string, key []byte) (*Store, error) {
	c, err := newSecretCipher(key)
	if err != nil {
		return nil, err
	}
	// WAL lets readers work while a writer commits; _txlock=immediate takes
	// the write lock at BEGIN so that two writers queue on the busy timeout
	// instead of failing half-way with SQLITE_BUSY.
	dsn := fmt.Sprintf("file:%s?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=10000&_txlock=immediate&_synchronous=NORMAL&_stmt_cache_size=64", path)
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Readers' transactions are deferred: they read a snapshot and never
	// wait for the write lock. The migrations made the file a WAL database,
	// so read-only connections need not change its journal mode.
	rdb, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?mode=ro&_busy_timeout=10000&_txlock=deferred&_stmt_cache_size=64", path))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Keep the connections open: each new one reads the schema again.
	db.SetMaxIdleConns(maxIdleConns)
	rdb.SetMaxIdleConns(maxIdleConns)
	s := &Store{db: db, rdb: rdb, cipher: c, now: func() time.Time { return time.Now().UTC() }}
	if err := s.migrate(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// maxIdleConns is how many connections of each pool stay open between
// requests (database/sql keeps 2 by default).
const maxIdleConns = 16

// SetGroupBuildLimit sets how many builds of one group's images may wait or
// run at once (CreateBuild refuses more); zero, the default, means no limit.
// Builds of System images are not counted nor limited.
func (s *Store) SetGroupBuildLimit(n int) { s.groupBuildLimit.Store(int64(max(n, 0))) }

// Close closes the database.
func (s *Store) Close() error { return errors.Join(s.rdb.Close(), s.db.Close()) }

// migrate applies, in name order, each embedded migration not yet recorded.
func (s *Store) migrate() error {
	if _, err := s.db.Exec(`CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := s.migrateFile(name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func (s *Store) migrateFile(name string) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM migrations WHERE name = ?`, name).Scan(&n); err != nil || n > 0 {
		return err
	}
	body, err := migrationFS.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(string(body)); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO migrations (name) VALUES (?)`, name); err != nil {
		return err
	}
	return tx.Commit()
}

// readTx runs fn in one read-only transaction: every query in it sees the
// same snapshot of the database.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// inTx runs fn in one write transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// timeFormat keeps times sortable as text.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

func parseNullTime(s sql.NullString) *time.Time {
	if !s.Valid {
		return nil
	}
	t := parseTime(s.String)
	return &t
}

// placeholders returns "?, ?, ?" for n arguments.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// isUniqueViolation tells a UNIQUE constraint failure from other errors.
func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
