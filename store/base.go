package store

import (
	"context"
	"database/sql"
	"time"
)

// Base is what imagehub knows of the base image of a custom image's current
// build (its newest succeeded one): the digest it was built on, and what the
// base's reference named in its registry when imagehub last looked.
type Base struct {
	// BaseDigest is the manifest digest of the base image the current build
	// was built on; "" when that build did not record one.
	BaseDigest string `json:"baseDigest,omitempty"`
	// BaseLatestDigest is the digest the base's reference named when
	// imagehub last looked (a base check, or the build itself), at
	// BaseCheckedAt; "" and nil before anyone looked.
	BaseLatestDigest string     `json:"baseLatestDigest,omitempty"`
	BaseCheckedAt    *time.Time `json:"baseCheckedAt,omitempty"`
	// BaseUpdateAvailable says that the base moved: its reference names
	// another image than the one the current build was built on, so a
	// rebuild of the same recipe gets the base's changes.
	BaseUpdateAvailable bool `json:"baseUpdateAvailable"`
}

// baseFields are the image columns Base is read from, of its current build
// cb (baseJoin): imageColumns.
const baseFields = `COALESCE(cb.base_digest, ''), COALESCE(cb.base_seen_digest, ''), cb.base_seen_at`

// baseJoin joins an image i to its current build cb, the newest succeeded
// one (the builds_image index finds it).
const baseJoin = `LEFT JOIN builds cb ON cb.id = (SELECT n.id FROM builds n WHERE n.image_id = i.id AND n.status = 'succeeded' ORDER BY n.id DESC LIMIT 1)`

// fill derives what the scanned columns say: the one rule of the mark.
func (b *Base) fill(seenAt sql.NullString) {
	b.BaseCheckedAt = parseNullTime(seenAt)
	b.BaseUpdateAvailable = b.BaseDigest != "" && b.BaseLatestDigest != "" && b.BaseDigest != b.BaseLatestDigest
}

// SetBuildBase records the base image digest a running build's worker
// looked at and builds on (the digest it pins in FROM), which is also what
// the base was last seen as. It is an EINVALID error for anything but a
// sha256 manifest digest, ECONFLICT for a build that no longer runs.
func (s *Store) SetBuildBase(ctx context.Context, id int64, digest string) error {
	if !ValidDigest(digest) {
		return Errorf(EINVALID, "A base image digest is sha256: and 64 hexadecimal digits, not %q.", digest)
	}
	return s.moveBuild(ctx, id, `UPDATE builds SET base_digest = ?1, base_seen_digest = ?1, base_seen_at = ?2
		WHERE id = ?3 AND status IN ('running', 'pushing')`, "is not running", digest, formatTime(s.now()), id)
}

// CurrentBuild returns the newest succeeded build of an image: the one its
// URL names. ENOTFOUND when none succeeded (or there is no such image).
func (s *Store) CurrentBuild(ctx context.Context, image string) (*Build, error) {
	bs, err := queryBuilds(ctx, s.db, ` WHERE i.name = ? AND b.status = 'succeeded' ORDER BY b.id DESC LIMIT 1`, image)
	if err != nil {
		return nil, err
	}
	if len(bs) == 0 {
		if _, err := s.FindImage(ctx, image); err != nil {
			return nil, err
		}
		return nil, Errorf(ENOTFOUND, "No build of image %q has succeeded yet.", image)
	}
	return bs[0], nil
}

// RecordBaseCheck records that the reference of the base image a
// succeeded build was built on names digest in its registry now. It is
// ECONFLICT for a build that did not succeed: only a built image has a base
// to compare.
func (s *Store) RecordBaseCheck(ctx context.Context, build int64, digest string) error {
	if !ValidDigest(digest) {
		return Errorf(EINVALID, "A base image digest is sha256: and 64 hexadecimal digits, not %q.", digest)
	}
	return s.moveBuild(ctx, build, `UPDATE builds SET base_seen_digest = ?, base_seen_at = ? WHERE id = ? AND status = 'succeeded'`,
		"did not succeed", digest, formatTime(s.now()), build)
}

// ImagesWithBase names the images whose current build recorded the base
// digest it was built on, by name: those a base check can compare.
func (s *Store) ImagesWithBase(ctx context.Context) ([]string, error) {
	return queryNames(ctx, s.db, `SELECT i.name FROM images i `+baseJoin+` WHERE cb.base_digest != '' ORDER BY i.name`)
}
