package store

import (
	"context"
	"database/sql"
)

// BuildRetention splits an image's builds, newest first, by what keeping
// the newest keep of them means (--keep-builds): kept are those newest ones,
// and a build that waits or runs whatever its place; expired are the older
// finished builds that still have their log and pushed tag (PrunedAt nil).
// A keep below 1 keeps every build.
func (s *Store) BuildRetention(ctx context.Context, image string, keep int) (kept, expired []*Build, err error) {
	bs, err := s.ListBuilds(ctx, image)
	if err != nil {
		return nil, nil, err
	}
	for i, b := range bs {
		switch {
		case keep < 1 || i < keep || b.Status.Active():
			kept = append(kept, b)
		case b.PrunedAt == nil:
			expired = append(expired, b)
		}
	}
	return kept, expired, nil
}

// MarkBuildsPruned records that builds lost their log and pushed tag now.
// It is an error for none of them: a build of a deleted image is ENOTFOUND.
func (s *Store) MarkBuildsPruned(ctx context.Context, ids ...int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		now := formatTime(s.now())
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `UPDATE builds SET pruned_at = ? WHERE id = ? AND pruned_at IS NULL`, now, id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				if _, err := findBuild(ctx, tx, id); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ImagesWithExpiredBuilds names the images that have a finished build older
// than their newest keep builds that still has its log and pushed tag: the
// images BuildRetention would find something expired in.
func (s *Store) ImagesWithExpiredBuilds(ctx context.Context, keep int) ([]string, error) {
	if keep < 1 {
		return nil, nil
	}
	return queryNames(ctx, s.db, `SELECT DISTINCT i.name FROM builds b JOIN images i ON i.id = b.image_id
		WHERE b.pruned_at IS NULL AND NOT `+activeBuildCond+`
			AND (SELECT COUNT(*) FROM builds n WHERE n.image_id = b.image_id AND n.id > b.id) >= ?
		ORDER BY i.name`, keep)
}

// ImageURLsWithPrefix returns the URLs and GPU URLs of all images that begin
// with prefix ("host/imagehub/name:" or "…/name@"): what still points into
// a repository of the registry, which must not be deleted from under them.
func (s *Store) ImageURLsWithPrefix(ctx context.Context, prefix string) ([]string, error) {
	return queryNames(ctx, s.db, `SELECT url FROM images WHERE substr(url, 1, length(?1)) = ?1
		UNION SELECT url_for_gpu FROM images WHERE substr(url_for_gpu, 1, length(?1)) = ?1`, prefix)
}
