package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PackageManager is a package manager whose packages a built image's list
// holds.
type PackageManager string

// The package managers whose packages imagehub lists.
const (
	ManagerApt   PackageManager = "apt"
	ManagerPip   PackageManager = "pip"
	ManagerConda PackageManager = "conda"
)

// PackageManagers are the package managers, in the order pages show them.
var PackageManagers = []PackageManager{ManagerApt, ManagerPip, ManagerConda}

// Bounds of a package list: what one build keeps at most. They are far
// beyond any real image (a large data-science image holds a few thousand
// packages, with names and versions of a few dozen bytes), and keep an image
// that lies in its package files from filling the database.
const (
	MaxPackages        = 100_000
	MaxPackageFieldLen = 256
)

// Package is one package installed in a built image, as its package manager
// recorded it: dpkg's status file (apt), a Python distribution's metadata
// (pip), a conda-meta record (conda).
type Package struct {
	Manager PackageManager `json:"manager"`
	Name    string         `json:"name"`
	Version string         `json:"version"`
}

// Validate checks a package as a list may hold it: a known manager, and a
// name and version of 1 to MaxPackageFieldLen bytes of printable UTF-8
// without spaces. It is the rule for what a worker reads from an image (an
// image is not trusted: its files may say anything) and for what the store
// keeps.
func (p Package) Validate() error {
	reasons := [3]string{packageFieldReason(p.Name), packageFieldReason(p.Version)}
	if !slices.Contains(PackageManagers, p.Manager) {
		reasons[2] = managerReason
	}
	if reasons == [3]string{} {
		return nil
	}
	fields := map[string]string{}
	for i, name := range []string{"name", "version", "manager"} {
		if reasons[i] != "" {
			fields[name] = reasons[i]
		}
	}
	return Invalid(fields)
}

// managerReason says which package managers there are.
const managerReason = "One of apt, pip and conda."

func packageFieldReason(s string) string {
	switch {
	case s == "":
		return "Required."
	case len(s) > MaxPackageFieldLen:
		return "At most " + strconv.Itoa(MaxPackageFieldLen) + " bytes."
	case !utf8.ValidString(s):
		return "Not valid UTF-8 text."
	case strings.IndexFunc(s, func(r rune) bool { return r == ' ' || !unicode.IsPrint(r) }) >= 0:
		return "No spaces, control or invisible characters."
	}
	return ""
}

// packageKey is what tells two packages of one list apart.
type packageKey struct {
	manager PackageManager
	name    string
}

func (p Package) key() packageKey { return packageKey{p.Manager, p.Name} }

// comparePackages orders packages by manager, then name, as lists are shown.
func comparePackages(a, b Package) int {
	return cmp.Or(cmp.Compare(a.Manager, b.Manager), cmp.Compare(a.Name, b.Name))
}

// CleanPackages keeps of pkgs what a list may hold: the valid packages, the
// first of each manager and name, at most MaxPackages of them. It returns
// them and how many were dropped.
func CleanPackages(pkgs []Package) (kept []Package, dropped int) {
	seen := make(map[packageKey]bool, len(pkgs))
	kept = make([]Package, 0, min(len(pkgs), MaxPackages))
	for _, p := range pkgs {
		if len(kept) == MaxPackages || p.Validate() != nil || seen[p.key()] {
			dropped++
			continue
		}
		seen[p.key()] = true
		kept = append(kept, p)
	}
	return kept, dropped
}

// checkPackages refuses a list that CleanPackages would change.
func checkPackages(pkgs []Package) error {
	if len(pkgs) > MaxPackages {
		return Errorf(EINVALID, "A package list holds at most %d packages, not %d.", MaxPackages, len(pkgs))
	}
	seen := make(map[packageKey]bool, len(pkgs))
	for i, p := range pkgs {
		if err := p.Validate(); err != nil {
			return Errorf(EINVALID, "Package %d of the list (%.40q) is not valid: %v", i+1, p.Name, ErrorFields(err))
		}
		if seen[p.key()] {
			return Errorf(EINVALID, "The package list holds %s %.40q twice.", p.Manager, p.Name)
		}
		seen[p.key()] = true
	}
	return nil
}

// SucceedBuild records a build's success as FinishBuild does, with the list
// of the packages its image holds, in the same transaction: the build is
// succeeded exactly when its list is there. A nil list means that none was
// read (the worker pushed nothing new, or could not read the image); the
// build then gets the list of the image's build that recorded the same
// digest, if one has a list, since it is the same image. An empty list is a
// list: an image without dpkg, pip or conda. A list that CleanPackages would
// change is refused (EINVALID), and nothing is recorded.
func (s *Store) SucceedBuild(ctx context.Context, id int64, digest string, pkgs []Package) error {
	if err := checkPackages(pkgs); err != nil {
		return err
	}
	return s.finishBuild(ctx, id, BuildSucceeded, digest, "", pkgs)
}

// recordPackages stores the package list of build id, which succeeded with
// digest (see SucceedBuild).
func recordPackages(ctx context.Context, tx *sql.Tx, id int64, digest string, pkgs []Package) error {
	if pkgs == nil {
		return copyPackages(ctx, tx, id, digest)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO package_lists (build_id, total) VALUES (?, ?)`, id, len(pkgs)); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO packages (build_id, manager, name, version) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, p := range pkgs {
		if _, err := stmt.ExecContext(ctx, id, p.Manager, p.Name, p.Version); err != nil {
			return err
		}
	}
	return nil
}

// copyPackages gives build id the list of the newest other build of its
// image that recorded digest and has a list; none is nothing to copy.
func copyPackages(ctx context.Context, tx *sql.Tx, id int64, digest string) error {
	var from int64
	err := tx.QueryRowContext(ctx, `SELECT o.id FROM builds o JOIN package_lists pl ON pl.build_id = o.id
		WHERE o.image_id = (SELECT image_id FROM builds WHERE id = ?) AND o.digest = ? AND o.id != ?
		ORDER BY o.id DESC LIMIT 1`, id, digest, id).Scan(&from)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO package_lists (build_id, total) SELECT ?, total FROM package_lists WHERE build_id = ?`, id, from); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO packages (build_id, manager, name, version)
		SELECT ?, manager, name, version FROM packages WHERE build_id = ?`, id, from)
	return err
}

// PackageFilter selects a page of a build's packages.
type PackageFilter struct {
	// Query keeps the packages whose name holds it, in any case.
	Query string
	// Manager keeps one manager's packages; "" keeps all.
	Manager PackageManager
	// Limit is the page's length (0: no limit), Offset where it starts.
	Limit, Offset int
}

// PackagePage is one page of a build's package list.
type PackagePage struct {
	Items []Package
	// Total counts the packages that match the filter.
	Total int
	// Counts counts the whole list's packages of each manager.
	Counts map[PackageManager]int
}

// ListPackages returns one page of the packages of a build's image that
// match f, ordered by manager and name. ENOTFOUND for an unknown build and
// for one without a list; EINVALID for an unknown manager.
func (s *Store) ListPackages(ctx context.Context, id int64, f PackageFilter) (*PackagePage, error) {
	if f.Manager != "" && !slices.Contains(PackageManagers, f.Manager) {
		return nil, Invalid(map[string]string{"manager": managerReason})
	}
	page := &PackagePage{Counts: map[PackageManager]int{}}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := findPackageList(ctx, tx, id); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT manager, COUNT(*) FROM packages WHERE build_id = ? GROUP BY manager`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m PackageManager
			var n int
			if err := rows.Scan(&m, &n); err != nil {
				return err
			}
			page.Counts[m] = n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		where, args := ` WHERE build_id = ?`, []any{id}
		if q := strings.TrimSpace(f.Query); q != "" {
			where += ` AND lower(name) LIKE ? ESCAPE '\'`
			args = append(args, likePattern(q))
		}
		if f.Manager != "" {
			where += ` AND manager = ?`
			args = append(args, f.Manager)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM packages`+where, args...).Scan(&page.Total); err != nil {
			return err
		}
		limit := f.Limit
		if limit <= 0 {
			limit = -1
		}
		page.Items, err = queryPackages(ctx, tx, where+` ORDER BY manager, name LIMIT ? OFFSET ?`, append(args, limit, f.Offset)...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// likePattern is a LIKE pattern (with ESCAPE '\') matching the lowercase
// text that holds q, in any case.
func likePattern(q string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(q)) + "%"
}

// findPackageList returns a build, ENOTFOUND when there is none or when it
// has no package list.
func findPackageList(ctx context.Context, tx *sql.Tx, id int64) (*Build, error) {
	b, err := findBuild(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if b.PackageCount == nil {
		return nil, Errorf(ENOTFOUND, "%s", noListReason(b))
	}
	return b, nil
}

// noListReason says why build b, which has no package list, has none.
func noListReason(b *Build) string {
	if b.Status != BuildSucceeded {
		return "Build " + strconv.FormatInt(b.ID, 10) + " has no package list: it has not succeeded (it is " + string(b.Status) + ")."
	}
	return "Build " + strconv.FormatInt(b.ID, 10) + " has no package list: its image was not read (it was built before imagehub read package lists, or reading it failed; its log says why)."
}

func queryPackages(ctx context.Context, tx *sql.Tx, tail string, args ...any) ([]Package, error) {
	rows, err := tx.QueryContext(ctx, `SELECT manager, name, version FROM packages`+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Package{}
	for rows.Next() {
		var p Package
		if err := rows.Scan(&p.Manager, &p.Name, &p.Version); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
