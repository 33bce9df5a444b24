package store

import (
	"context"
	"database/sql"
)

// Selection returns the ready images a user may use: global system images,
// system images granted to one of their groups, and their groups' own images.
func (s *Store) Selection(ctx context.Context, username string) ([]*Image, error) {
	var imgs []*Image
	err := s.inReadTx(ctx, func(tx *sql.Tx) (err error) {
		imgs, err = s.queryImages(ctx, tx, ` WHERE i.url != '' AND (
			(i.owner_group IS NULL AND i.global)
			OR i.id IN (SELECT ig.image_id FROM image_groups ig JOIN memberships m ON m.group_id = ig.group_id
				JOIN users u ON u.id = m.user_id WHERE u.username = ?)
		) ORDER BY i.display_name, i.name`, username)
		return err
	})
	return imgs, err
}

// GroupSelection returns the ready images open to one group: global system
// images, system images granted to it, and its own images.
func (s *Store) GroupSelection(ctx context.Context, group string) ([]*Image, error) {
	var imgs []*Image
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		gid, err := lookupID(ctx, tx, `SELECT id FROM groups WHERE name = ?`, group)
		if err != nil {
			return err
		} else if gid == 0 {
			return Errorf(ENOTFOUND, "Group %q not found.", group)
		}
		imgs, err = s.queryImages(ctx, tx, ` WHERE i.url != '' AND (
			(i.owner_group IS NULL AND i.global)
			OR i.id IN (SELECT image_id FROM image_groups WHERE group_id = ?)
		) ORDER BY i.display_name, i.name`, gid)
		return err
	})
	return imgs, err
}
