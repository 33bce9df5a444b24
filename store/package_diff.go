package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
)

// PackageChange is a package whose version differs between two builds.
type PackageChange struct {
	Manager PackageManager `json:"manager"`
	Name    string         `json:"name"`
	From    string         `json:"from"`
	To      string         `json:"to"`
}

// PackageDiff is what changed in an image's packages from one build to
// another: the packages only the later one holds, those only the earlier
// one held, and those whose version changed, each ordered by manager and
// name.
type PackageDiff struct {
	From    int64           `json:"from"`
	To      int64           `json:"to"`
	Added   []Package       `json:"added"`
	Removed []Package       `json:"removed"`
	Changed []PackageChange `json:"changed"`
}

// Empty reports whether nothing changed.
func (d *PackageDiff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// DiffPackages compares two package lists; a package is the same package in
// both when its manager and name are.
func DiffPackages(from, to []Package) (added, removed []Package, changed []PackageChange) {
	added, removed, changed = []Package{}, []Package{}, []PackageChange{}
	before := make(map[packageKey]string, len(from))
	for _, p := range from {
		before[p.key()] = p.Version
	}
	after := make(map[packageKey]bool, len(to))
	for _, p := range to {
		after[p.key()] = true
		switch v, ok := before[p.key()]; {
		case !ok:
			added = append(added, p)
		case v != p.Version:
			changed = append(changed, PackageChange{Manager: p.Manager, Name: p.Name, From: v, To: p.Version})
		}
	}
	for _, p := range from {
		if !after[p.key()] {
			removed = append(removed, p)
		}
	}
	slices.SortFunc(added, comparePackages)
	slices.SortFunc(removed, comparePackages)
	slices.SortFunc(changed, func(a, b PackageChange) int {
		return comparePackages(Package{Manager: a.Manager, Name: a.Name}, Package{Manager: b.Manager, Name: b.Name})
	})
	return added, removed, changed
}

// DiffBuilds compares the package lists of two builds of an image. A zero
// to is the image's newest succeeded build, a zero from the succeeded build
// before to. An unknown image or build is ENOTFOUND; a build of another
// image, one without a package list, and a missing default are EINVALID at
// "from" or "to".
func (s *Store) DiffBuilds(ctx context.Context, image string, from, to int64) (*PackageDiff, error) {
	d := &PackageDiff{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, imageID, err := s.findImage(ctx, tx, image)
		if err != nil {
			return err
		}
		// The later build first: the earlier one's default is the newest
		// succeeded build before it.
		toList, err := diffSide(ctx, tx, imageID, image, "to", &to, 0)
		if err != nil {
			return err
		}
		fromList, err := diffSide(ctx, tx, imageID, image, "from", &from, to)
		if err != nil {
			return err
		}
		d.Added, d.Removed, d.Changed = DiffPackages(fromList, toList)
		d.From, d.To = from, to
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// diffSide returns the package list of one side of a diff, the build *id
// of image (the newest succeeded build before build before when *id is 0,
// and *id becomes it). A build of another image, one without a list and a
// missing default are EINVALID at field; an unknown build is ENOTFOUND.
func diffSide(ctx context.Context, tx *sql.Tx, imageID int64, image, field string, id *int64, before int64) ([]Package, error) {
	pkgs, err := sideList(ctx, tx, imageID, image, id, before)
	if ErrorCode(err) == EINVALID {
		return nil, Invalid(map[string]string{field: ErrorMessage(err)})
	}
	return pkgs, err
}

func sideList(ctx context.Context, tx *sql.Tx, imageID int64, image string, id *int64, before int64) ([]Package, error) {
	if *id == 0 {
		var err error
		if *id, err = lastSucceeded(ctx, tx, imageID, image, before); err != nil {
			return nil, err
		}
	}
	b, err := findBuild(ctx, tx, *id)
	if err != nil {
		return nil, err
	}
	if b.Image != image {
		return nil, Errorf(EINVALID, "Build %d is a build of %s, not of %s.", b.ID, b.Image, image)
	}
	if b.PackageCount == nil {
		return nil, Errorf(EINVALID, "%s", noListReason(b))
	}
	return queryPackages(ctx, tx, ` WHERE build_id = ?`, b.ID)
}

// lastSucceeded returns the newest succeeded build of an image, older than
// build before unless that is 0; EINVALID when there is none.
func lastSucceeded(ctx context.Context, tx *sql.Tx, imageID int64, image string, before int64) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM builds WHERE image_id = ? AND status = 'succeeded' AND (? = 0 OR id < ?)
		ORDER BY id DESC LIMIT 1`, imageID, before, before).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows) && before == 0:
		return 0, Errorf(EINVALID, "Image %s has no successful build.", image)
	case errors.Is(err, sql.ErrNoRows):
		return 0, Errorf(EINVALID, "Image %s has no successful build before build %d.", image, before)
	}
	return id, err
}
