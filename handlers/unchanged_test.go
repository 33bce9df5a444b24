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
)

// assertUnchanged runs refuse, a request that must be refused, and fails t
// when it changed anything: a row of any table of the database (every table
// sqlite_master lists, sqlite_sequence included) or the build-log folder
// (its files, their sizes).
func (e *testEnv) assertUnchanged(t *testing.T, refuse func()) {
	t.Helper()
	before := e.snapshot(t)
	refuse()
	for _, c := range changes(before, e.snapshot(t)) {
		t.Error(c)
	}
}

// changes says, for each table (or the build-log folder) that differs
// between two snapshots, how it did.
func changes(before, after map[string][]string) []string {
	var out []string
	for _, table := range sortedKeys(mergeKeys(before, after)) {
		if was, is := before[table], after[table]; !slices.Equal(was, is) {
			out = append(out, fmt.Sprintf("%s changed: rows gone %q, rows new %q", table, missing(was, is), missing(is, was)))
		}
	}
	return out
}

// snapshot is every row of every table, each table's rows sorted, and the
// build-log folder's listing under the key "build logs/".
func (e *testEnv) snapshot(t *testing.T) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables, err := queryStrings(db, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	snap := map[string][]string{}
	for _, table := range tables {
		rows, err := queryStrings(db, `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(rows)
		snap[table] = rows
	}
	logs := filepath.Dir(e.server.logs.Dir(0))
	err = filepath.WalkDir(logs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(logs, path)
		snap["build logs/"] = append(snap["build logs/"], fmt.Sprintf("%s %v %d", rel, info.Mode(), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(snap["build logs/"])
	return snap
}

// queryStrings runs query and returns each row as one string of its values.
func queryStrings(db *sql.DB, query string) ([]string, error) {
	rows, err := db.Query(query)
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
		cells := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			cells[i] = fmt.Sprintf("%v", v)
		}
		out = append(out, strings.Join(cells, " | "))
	}
	return out, rows.Err()
}

// missing is the rows of a, sorted, that b lacks.
func missing(a, b []string) []string {
	var out []string
	for _, row := range a {
		if _, found := slices.BinarySearch(b, row); !found {
			out = append(out, row)
		}
	}
	return out
}

// mergeKeys is the union of the keys of a and b, as a set.
func mergeKeys(a, b map[string][]string) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

// TestSnapshotSeesChanges checks that what assertUnchanged compares can
// differ: a new group, a changed image and a new log file each show.
func TestSnapshotSeesChanges(t *testing.T) {
	env := newTestEnv(t)
	img := env.mustCreateImage(testImage("base"))
	steps := map[string]func(){
		"groups": func() { env.mustCreateGroup("team-a") },
		"images": func() {
			img.Description = "changed"
			if err := env.store.UpdateImage(t.Context(), img); err != nil {
				t.Fatal(err)
			}
		},
		"build logs/": func() {
			if err := os.MkdirAll(env.server.logs.Dir(7), 0o700); err != nil {
				t.Fatal(err)
			}
		},
	}
	for _, want := range sortedKeys(steps) {
		before := env.snapshot(t)
		steps[want]()
		got := changes(before, env.snapshot(t))
		if len(got) != 1 || !strings.HasPrefix(got[0], want+" changed") {
			t.Errorf("after a change of %s, the changes seen are %q", want, got)
		}
	}
}
