package handlers

import (
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3" // the store's driver, to read its file

	"imagehub/store"
)

// unchangedIgnored lists the columns (table.column) that a refused request
// may change: a token's last use is recorded when it authenticates, before
// the request is read.
var unchangedIgnored = map[string]bool{"tokens.last_used": true}

// envState is what a refused request must leave as it was: every row of
// every table of the database, the build-log folder's files with their
// sizes, and how often the build queue was woken.
type envState struct {
	tables   map[string][]string
	logs     []string
	notified int
}

// state reads the environment's state: the rows of each table (found in
// sqlite_master, so that a new table is covered without a word here), each
// printed and sorted, and the log folder's listing. catalogue_version is left
// out: triggers count every change of the catalogued tables there, so it
// only repeats what those tables show.
func (env *testEnv) state(t *testing.T) envState {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+env.dbPath+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names, err := queryStrings(db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'catalogue_version' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	st := envState{tables: map[string][]string{}, notified: env.queue.notifications()}
	for _, name := range names {
		rows, err := tableRows(db, name)
		if err != nil {
			t.Fatalf("reading table %s: %v", name, err)
		}
		st.tables[name] = rows
	}
	err = filepath.WalkDir(env.logDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(env.logDir, path)
		st.logs = append(st.logs, fmt.Sprintf("%s %v %d", rel, info.Mode(), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// assertUnchanged runs do and fails the test when it changed a row of the
// database, the build-log folder or woke the build queue: what every refused
// request must leave alone.
func (env *testEnv) assertUnchanged(t *testing.T, do func()) {
	t.Helper()
	before := env.state(t)
	do()
	for _, c := range before.changes(env.state(t)) {
		t.Error(c)
	}
}

// changes says what differs from s in after, one sentence per table, the
// log folder and the queue.
func (s envState) changes(after envState) []string {
	var out []string
	for _, name := range sortedKeys(after.tables) {
		if b, a := s.tables[name], after.tables[name]; !slices.Equal(b, a) {
			out = append(out, fmt.Sprintf("table %s changed:\n before %q\n after  %q", name, b, a))
		}
	}
	if len(s.tables) != len(after.tables) {
		out = append(out, fmt.Sprintf("tables %v became %v", sortedKeys(s.tables), sortedKeys(after.tables)))
	}
	if !slices.Equal(s.logs, after.logs) {
		out = append(out, fmt.Sprintf("the build-log folder changed:\n before %q\n after  %q", s.logs, after.logs))
	}
	if s.notified != after.notified {
		out = append(out, fmt.Sprintf("the build queue was woken (%d times, then %d)", s.notified, after.notified))
	}
	return out
}

// TestStateSeesEveryChange: the snapshot of assertUnchanged tells a new row,
// a changed one, a new log file and a woken queue.
func TestStateSeesEveryChange(t *testing.T) {
	env := newTestEnv(t)
	ctx := t.Context()
	steps := []struct {
		name   string
		change func()
		want   string
	}{
		{"a new row", func() { env.mustCreateGroup("team-a") }, "table groups changed"},
		{"a changed row", func() {
			if err := env.store.RenameGroup(ctx, "team-a", &store.Group{Name: "team-a", DisplayName: "Team A"}); err != nil {
				t.Fatal(err)
			}
		}, "table groups changed"},
		{"a log file", func() {
			if err := os.WriteFile(filepath.Join(env.logDir, "1.log"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "build-log folder changed"},
		{"the queue woken", env.queue.Notify, "build queue was woken"},
	}
	for _, step := range steps {
		before := env.state(t)
		if c := before.changes(env.state(t)); len(c) != 0 {
			t.Fatalf("%s: changes without a change: %v", step.name, c)
		}
		step.change()
		c := before.changes(env.state(t))
		if len(c) != 1 || !strings.Contains(c[0], step.want) {
			t.Errorf("%s: changes %q, want one saying %q", step.name, c, step.want)
		}
	}
}

// tableRows prints each row of a table, columns in order, and sorts them.
func tableRows(db *sql.DB, table string) ([]string, error) {
	rows, err := db.Query(`SELECT * FROM "` + strings.ReplaceAll(table, `"`, `""`) + `"`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		cells := make([]string, 0, len(cols))
		for i, v := range vals {
			if unchangedIgnored[table+"."+cols[i]] {
				continue
			}
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			cells = append(cells, fmt.Sprintf("%s=%v", cols[i], v))
		}
		out = append(out, strings.Join(cells, " "))
	}
	slices.Sort(out)
	return out, rows.Err()
}

func queryStrings(db *sql.DB, query string) ([]string, error) {
	rows, err := db.Query(query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
