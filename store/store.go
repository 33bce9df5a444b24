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
	db *sql.DB
	// reader runs the read-only transactions (inReadTx): deferred, so that
	// in WAL mode they neither wait for a writer nor hold one up.
	reader *sql.DB
	cipher *secretCipher
	// now is the clock, replaceable in tests.
	now func() time.Time
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
	dsn := fmt.Sprintf("file:%s?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=10000&_txlock=immediate&_synchronous=NORMAL", path)
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, cipher: c, now: func() time.Time { return time.Now().UTC() }}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	// Opened after the migrations, which made the file and its WAL mode.
	reader, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?_foreign_keys=on&_busy_timeout=10000&_txlock=deferred&_query_only=true", path))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s.reader = reader
	return s, nil
}

// SetGroupBuildLimit sets how many builds of one group's images may wait or
// run at once (CreateBuild refuses more); zero, the default, means no limit.
// Builds of System images are not counted nor limited.
func (s *Store) SetGroupBuildLimit(n int) { s.groupBuildLimit.Store(int64(max(n, 0))) }

// Close closes the database.
func (s *Store) Close() error { return errors.Join(s.reader.Close(), s.db.Close()) }

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

// inTx runs fn in one transaction, committing when it returns nil.
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

// inReadTx runs fn in one read-only transaction: it sees one snapshot of
// the database, and takes no write lock (_txlock=immediate, which inTx's
// writers need, would make every read wait for every write).
func (s *Store) inReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
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
