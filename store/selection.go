package store

import (
	"context"
	"slices"
)

// Selection returns the ready images a user may use: global system images,
// system images granted to one of their groups, and their groups' own images.
func (s *Store) Selection(ctx context.Context, username string) ([]*Image, error) {
	groups, err := userGroupNames(ctx, s.rdb, username)
	if err != nil {
		return nil, err
	}
	return s.SelectionOfGroups(ctx, groups)
}

// SelectionOfGroups returns the ready images open to members of any of
// the groups (by name; unknown ones open nothing): global system images,
// system images granted to one of the groups, and the groups' own images.
// It is Selection for a user whose groups are known already.
func (s *Store) SelectionOfGroups(ctx context.Context, groups []string) ([]*Image, error) {
	cat, err := s.catalogue(ctx)
	if err != nil {
		return nil, err
	}
	return cat.selection(groups), nil
}

// GroupSelection returns the ready images open to one group: global system
// images, system images granted to it, and its own images.
func (s *Store) GroupSelection(ctx context.Context, group string) ([]*Image, error) {
	cat, err := s.catalogue(ctx)
	if err != nil {
		return nil, err
	}
	if _, found := slices.BinarySearch(cat.groups, group); !found {
		return nil, Errorf(ENOTFOUND, "Group %q not found.", group)
	}
	return cat.selection([]string{group}), nil
}

// userGroupNames returns the names of the groups a user belongs to (none
// for a user who does not exist).
func userGroupNames(ctx context.Context, q querier, username string) ([]string, error) {
	return queryNames(ctx, q, `SELECT g.name FROM memberships m JOIN users u ON u.id = m.user_id
		JOIN groups g ON g.id = m.group_id WHERE u.username = ?`, username)
}

// queryNames returns the one text column of a query's rows.
func queryNames(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
