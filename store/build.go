package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"regexp"
)

const buildColumns = `SELECT b.id, i.name, b.status, b.recipe, b.target_image, b.digest, b.base_digest, b.error, b.created_at, b.started_at,
	b.finished_at, b.pruned_at, pl.total FROM builds b JOIN images i ON i.id = b.image_id LEFT JOIN package_lists pl ON pl.build_id = b.id`

// activeBuildCond selects the builds that wait or run (BuildStatus.Active);
// the partial unique index builds_one_active allows one of them per image.
const activeBuildCond = `b.status IN ('queued', 'running', 'pushing')`

// CreateBuild queues a new build of a custom image from recipe r, to be
// pushed as target; r becomes the image's recipe. One build of an image
// waits or runs at a time: while one does, CreateBuild is an ECONFLICT error
// that names it. The check and the insert are one transaction, and the
// index builds_one_active refuses a second active build whoever writes it.
// A group's images have at most SetGroupBuildLimit builds waiting or running
// together; past it CreateBuild is an ECONFLICT error too, and nothing is
// written.
func (s *Store) CreateBuild(ctx context.Context, image string, r Recipe, target string) (*Build, error) {
	var b *Build
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		img, imageID, err := s.findImage(ctx, tx, image)
		if err != nil {
			return err
		}
		if img.Recipe == nil {
			return Errorf(ECONFLICT, "Image %q is not a custom image: it has no recipe to build.", image)
		}
		active, err := queryBuilds(ctx, tx, ` WHERE b.image_id = ? AND `+activeBuildCond, imageID)
		if err != nil {
			return err
		} else if len(active) > 0 {
			return activeBuildConflict(active[0])
		}
		if err := s.checkGroupBuildLimit(ctx, tx, img, imageID); err != nil {
			return err
		}
		if *img.Recipe != r {
			if _, err := tx.ExecContext(ctx, `UPDATE images SET recipe = ?, updated_at = ? WHERE id = ?`,
				recipeJSON(&r), formatTime(s.now()), imageID); err != nil {
				return err
			}
		}
		raw, _ := json.Marshal(r)
		res, err := tx.ExecContext(ctx, `INSERT INTO builds (image_id, status, recipe, target_image, created_at) VALUES (?, ?, ?, ?, ?)`,
			imageID, BuildQueued, string(raw), target, formatTime(s.now()))
		if isUniqueViolation(err) {
			return Errorf(ECONFLICT, "Another build of %q is queued already; wait for it or cancel it first.", image)
		} else if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		b, err = findBuild(ctx, tx, id)
		return err
	})
	return b, err
}

// checkGroupBuildLimit refuses another build of a group's image while the
// group has as many builds waiting or running as SetGroupBuildLimit allows.
// System images are not limited. The caller's transaction took the write
// lock at BEGIN (_txlock=immediate), so two builds asked for at once are
// counted one after the other and cannot both pass.
func (s *Store) checkGroupBuildLimit(ctx context.Context, tx *sql.Tx, img *Image, imageID int64) error {
	limit := s.groupBuildLimit.Load()
	if limit == 0 || img.Owner == OwnerSystem {
		return nil
	}
	var n int64
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM builds b JOIN images i ON i.id = b.image_id
		WHERE i.owner_group = (SELECT owner_group FROM images WHERE id = ?) AND `+activeBuildCond, imageID).Scan(&n)
	if err != nil {
		return err
	}
	if n >= limit {
		return Errorf(ECONFLICT, "Group %s has %d builds waiting or running; the limit is %d. Wait for one to finish, or cancel one first.",
			img.Owner, n, limit)
	}
	return nil
}

// activeBuildConflict is the answer to a build asked for while b waits or runs.
func activeBuildConflict(b *Build) error {
	return Errorf(ECONFLICT, "Build #%d of this image is still %s; wait for it or cancel it first.", b.ID, b.Status)
}

// ActiveBuilds returns the build that waits or runs of each of the named
// images that has one (of every image when no name is given), by image name.
func (s *Store) ActiveBuilds(ctx context.Context, images ...string) (map[string]*Build, error) {
	where, args := ` WHERE `+activeBuildCond, make([]any, len(images))
	if len(images) > 0 {
		where += ` AND i.name IN (` + placeholders(len(images)) + `)`
		for i, name := range images {
			args[i] = name
		}
	}
	bs, err := queryBuilds(ctx, s.rdb, where, args...)
	if err == nil {
		err = s.addProgress(ctx, s.rdb, bs)
	}
	if err != nil {
		return nil, err
	}
	m := make(map[string]*Build, len(bs))
	for _, b := range bs {
		m[b.Image] = b
	}
	return m, nil
}

// FindBuild returns one build.
func (s *Store) FindBuild(ctx context.Context, id int64) (*Build, error) {
	var b *Build
	err := s.readTx(ctx, func(tx *sql.Tx) (err error) {
		if b, err = findBuild(ctx, tx, id); err != nil {
			return err
		}
		return s.addProgress(ctx, tx, []*Build{b})
	})
	return b, err
}

// ListBuilds returns an image's builds, newest first.
func (s *Store) ListBuilds(ctx context.Context, image string) ([]*Build, error) {
	if _, err := s.FindImage(ctx, image); err != nil {
		return nil, err
	}
	bs, err := queryBuilds(ctx, s.rdb, ` WHERE i.name = ? ORDER BY b.id DESC`, image)
	if err != nil {
		return nil, err
	}
	return bs, s.addProgress(ctx, s.rdb, bs)
}

// ListBuildsByStatus returns the builds in any of the states, oldest first.
func (s *Store) ListBuildsByStatus(ctx context.Context, states ...BuildStatus) ([]*Build, error) {
	if len(states) == 0 {
		return nil, nil
	}
	args := make([]any, len(states))
	for i, st := range states {
		args[i] = st
	}
	return queryBuilds(ctx, s.rdb, ` WHERE b.status IN (`+placeholders(len(states))+`) ORDER BY b.id`, args...)
}

// CountBuilds returns how many builds are in state st (an index lookup).
func (s *Store) CountBuilds(ctx context.Context, st BuildStatus) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM builds WHERE status = ?`, st).Scan(&n)
	return n, err
}

// StartBuild moves a queued build to running.
func (s *Store) StartBuild(ctx context.Context, id int64) error {
	return s.moveBuild(ctx, id, `UPDATE builds SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'`,
		"is no longer queued", formatTime(s.now()), id)
}

// SetBuildPhase records that a running build moved on (to pushing).
func (s *Store) SetBuildPhase(ctx context.Context, id int64, st BuildStatus) error {
	return s.moveBuild(ctx, id, `UPDATE builds SET status = ? WHERE id = ? AND status IN ('running', 'pushing')`,
		"is not running", st, id)
}

// FinishBuild gives a build its final state. On success the image's URL (and
// its GPU URL, unless a separate one is set) becomes the pushed reference
// pinned to its digest ("repo:tag@sha256:…", see PinnedReference) in the
// same transaction, so the image is ready exactly when its build says so,
// and a tag overwritten later in the registry changes nothing that runs. A
// success without a well-formed digest is refused (EINVALID). A success
// recorded here has no package list of its own (see SucceedBuild). The
// step that runs, if one does, ends then (RecordBuildStep).
func (s *Store) FinishBuild(ctx context.Context, id int64, st BuildStatus, digest, reason string) error {
	return s.finishBuild(ctx, id, st, digest, reason, nil)
}

// finishBuild is FinishBuild, with the package list of a success (see
// SucceedBuild).
func (s *Store) finishBuild(ctx context.Context, id int64, st BuildStatus, digest, reason string, pkgs []Package) error {
	if st.Active() {
		return Errorf(EINVALID, "%q is not a final build state.", st)
	}
	if st == BuildSucceeded && !ValidDigest(digest) {
		return Errorf(EINVALID, "A succeeded build needs the sha256 digest of what it pushed, not %q.", digest)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		b, err := findBuild(ctx, tx, id)
		if err != nil {
			return err
		}
		if !b.Status.Active() {
			return Errorf(ECONFLICT, "Build %d has already finished (%s).", id, b.Status)
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, `UPDATE builds SET status = ?, digest = ?, error = ?, finished_at = ? WHERE id = ?`,
			st, digest, reason, formatTime(now), id); err != nil {
			return err
		}
		if err := endStep(ctx, tx, id, now); err != nil {
			return err
		}
		if st != BuildSucceeded {
			return nil
		}
		pinned := PinnedReference(b.TargetImage, digest)
		if _, err = tx.ExecContext(ctx, `UPDATE images SET url = ?, url_for_gpu = CASE WHEN use_gpu_url THEN url_for_gpu ELSE ? END,
			updated_at = ? WHERE name = ?`, pinned, pinned, formatTime(s.now()), b.Image); err != nil {
			return err
		}
		return recordPackages(ctx, tx, id, digest, pkgs)
	})
}

// digestRE is the form of the manifest digests builds record.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ValidDigest reports whether s is a sha256 manifest digest, "sha256:" and
// 64 lowercase hexadecimal digits.
func ValidDigest(s string) bool {
	return digestRE.MatchString(s)
}

// PinnedReference is a pushed reference pinned to the digest of what was
// pushed: "host/prefix/name:tag@sha256:…". A client pulls by the digest and
// shows the tag, so a tag moved in the registry afterwards is not pulled.
func PinnedReference(target, digest string) string {
	return target + "@" + digest
}

// LastDigest returns the digest that the newest succeeded build of an image
// recorded for target, and the digest of the base image that build was
// built on ("" when it did not record one): a build of the same recipe is
// up to date only while the registry's tag still names the one and the
// base's reference the other. ENOTFOUND when no build of image that pushed
// target succeeded.
func (s *Store) LastDigest(ctx context.Context, image, target string) (digest, baseDigest string, err error) {
	err = s.rdb.QueryRowContext(ctx, `SELECT b.digest, b.base_digest FROM builds b JOIN images i ON i.id = b.image_id
		WHERE i.name = ? AND b.target_image = ? AND b.status = 'succeeded' AND b.digest != '' ORDER BY b.id DESC LIMIT 1`,
		image, target).Scan(&digest, &baseDigest)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", Errorf(ENOTFOUND, "No build of image %q that pushed %s succeeded.", image, target)
	}
	return digest, baseDigest, err
}

func (s *Store) moveBuild(ctx context.Context, id int64, query, conflict string, args ...any) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := findBuild(ctx, tx, id); err != nil {
				return err
			}
			return Errorf(ECONFLICT, "Build %d %s.", id, conflict)
		}
		return nil
	})
}

func findBuild(ctx context.Context, tx *sql.Tx, id int64) (*Build, error) {
	bs, err := queryBuilds(ctx, tx, ` WHERE b.id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(bs) == 0 {
		return nil, Errorf(ENOTFOUND, "Build %d not found.", id)
	}
	return bs[0], nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryBuilds(ctx context.Context, q querier, tail string, args ...any) ([]*Build, error) {
	rows, err := q.QueryContext(ctx, buildColumns+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Build
	for rows.Next() {
		var (
			b                 Build
			recipe, created   string
			started, finished sql.NullString
			pruned            sql.NullString
			packages          sql.NullInt64
		)
		if err := rows.Scan(&b.ID, &b.Image, &b.Status, &recipe, &b.TargetImage, &b.Digest, &b.BaseDigest, &b.Error, &created, &started, &finished, &pruned, &packages); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(recipe), &b.Recipe); err != nil {
			return nil, errors.Join(errors.New("corrupt recipe"), err)
		}
		b.CreatedAt, b.StartedAt, b.FinishedAt = parseTime(created), parseNullTime(started), parseNullTime(finished)
		b.PrunedAt = parseNullTime(pruned)
		if packages.Valid {
			n := int(packages.Int64)
			b.PackageCount = &n
		}
		out = append(out, &b)
	}
	return out, rows.Err()
}
