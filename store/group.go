package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Group is a set of users that images can be granted to; its group admins
// manage the group's own images.
type Group struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName"`
	Members     []Member  `json:"members"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Role is what a member may do in a group.
type Role string

// The roles of a group member.
const (
	RoleMember Role = "member"
	RoleAdmin  Role = "admin"
)

// Member is one user of a group and their role in it: the group's side of a
// user's Membership.
type Member struct {
	Username string `json:"username"`
	Role     Role   `json:"role"`
}

// reservedGroupNames are words that already mean something wherever a
// group's name is shown or used, each with what it means. A group named
// "system" would be taken for the owner of the administrators' images (the
// API's "owner": "system", ?owner=system), and its group admins would manage
// System images.
var reservedGroupNames = map[string]string{
	OwnerSystem: "the owner of the administrators' images",
	"global":    "the images every group may use",
	"all":       "every owner in the images table's filter",
	"admin":     "the administrators and their pages under /admin, and the group admin role",
	"new":       "the address of a form that adds something",
}

// groupNameReason returns why name, a valid name, is reserved, or "" when
// it is not.
func groupNameReason(name string) string {
	if meaning, ok := reservedGroupNames[name]; ok {
		return fmt.Sprintf("%q is reserved: it stands for %s. Choose another name.", name, meaning)
	}
	return ""
}

// Validate checks a group's fields.
func (g *Group) Validate() error { return g.validate("") }

// validate checks a group's fields; current is the group's name before a
// rename. A reserved name that a group had before the rule existed may be
// kept (the migration renamed "system", the one that misled), but no group
// may take one.
func (g *Group) validate(current string) error {
	f := map[string]string{}
	if r := nameReason(g.Name); r != "" {
		f["name"] = r
	} else if r := groupNameReason(g.Name); r != "" && g.Name != current {
		f["name"] = r
	}
	if r := textReason(g.DisplayName, 100); r != "" {
		f["displayName"] = r
	}
	if len(f) > 0 {
		return Invalid(f)
	}
	return nil
}

// CreateGroup stores a new group.
func (s *Store) CreateGroup(ctx context.Context, g *Group) error {
	if err := g.Validate(); err != nil {
		return err
	}
	g.CreatedAt, g.Members = s.now(), []Member{}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO groups (name, display_name, created_at) VALUES (?, ?, ?)`,
			g.Name, g.DisplayName, formatTime(g.CreatedAt))
		if isUniqueViolation(err) {
			return Invalid(map[string]string{"name": "A group with this name exists already."})
		}
		return err
	})
}

// RenameGroup changes a group's name and display name; grants and members follow it.
func (s *Store) RenameGroup(ctx context.Context, name string, g *Group) error {
	if err := g.validate(name); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE groups SET name = ?, display_name = ? WHERE name = ?`, g.Name, g.DisplayName, name)
		if isUniqueViolation(err) {
			return Invalid(map[string]string{"name": "A group with this name exists already."})
		} else if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ENOTFOUND, "Group %q not found.", name)
		}
		return nil
	})
}

// DeleteGroup removes a group, its memberships, its grants and its own images.
// While a build of one of its images waits or runs it is an ECONFLICT error.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// The group's own images go with it (ON DELETE CASCADE): not while
		// one of them is being built, as DeleteImage.
		active, err := queryBuilds(ctx, tx, ` WHERE i.owner_group = (SELECT id FROM groups WHERE name = ?) AND `+activeBuildCond, name)
		if err != nil {
			return err
		} else if len(active) > 0 {
			return Errorf(ECONFLICT, "Build #%d of the group's image %s is still %s; cancel the build first, then delete the group.",
				active[0].ID, active[0].Image, active[0].Status)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM groups WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ENOTFOUND, "Group %q not found.", name)
		}
		return nil
	})
}

// FindGroup returns a group with its members.
func (s *Store) FindGroup(ctx context.Context, name string) (*Group, error) {
	var g *Group
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		gs, err := s.queryGroups(ctx, tx, ` WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if len(gs) == 0 {
			return Errorf(ENOTFOUND, "Group %q not found.", name)
		}
		g = gs[0]
		return nil
	})
	return g, err
}

// ListGroups returns every group with its members, by name.
func (s *Store) ListGroups(ctx context.Context) ([]*Group, error) {
	var gs []*Group
	err := s.readTx(ctx, func(tx *sql.Tx) (err error) {
		gs, err = s.queryGroups(ctx, tx, ``)
		return err
	})
	return gs, err
}

// GroupNames returns the name of every group, in order, from the
// catalogue (catalogue.go).
func (s *Store) GroupNames(ctx context.Context) ([]string, error) {
	cat, err := s.catalogue(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Clone(cat.groups), nil
}

func (s *Store) queryGroups(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]*Group, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, name, display_name, created_at FROM groups`+where+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		gs   []*Group
		byID = map[int64]*Group{}
	)
	for rows.Next() {
		var (
			g       Group
			id      int64
			created string
		)
		if err := rows.Scan(&id, &g.Name, &g.DisplayName, &created); err != nil {
			return nil, err
		}
		g.CreatedAt, g.Members = parseTime(created), []Member{}
		gs, byID[id] = append(gs, &g), &g
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	return gs, loadMembers(ctx, tx, byID)
}

func loadMembers(ctx context.Context, tx *sql.Tx, byID map[int64]*Group) error {
	rows, err := tx.QueryContext(ctx, `SELECT m.group_id, u.username, m.role FROM memberships m JOIN users u ON u.id = m.user_id ORDER BY u.username`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id int64
			m  Member
		)
		if err := rows.Scan(&id, &m.Username, &m.Role); err != nil {
			return err
		}
		if g := byID[id]; g != nil {
			g.Members = append(g.Members, m)
		}
	}
	return rows.Err()
}

// SetMember adds a user to a group, or changes their role in it.
func (s *Store) SetMember(ctx context.Context, group, username string, role Role) error {
	if role != RoleMember && role != RoleAdmin {
		return Invalid(map[string]string{"role": `Role must be "member" or "admin".`})
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		gid, uid, err := groupAndUser(ctx, tx, group, username)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO memberships (group_id, user_id, role) VALUES (?, ?, ?)
			ON CONFLICT (group_id, user_id) DO UPDATE SET role = excluded.role`, gid, uid, role)
		return err
	})
}

// RemoveMember takes a user out of a group.
func (s *Store) RemoveMember(ctx context.Context, group, username string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		gid, uid, err := groupAndUser(ctx, tx, group, username)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE group_id = ? AND user_id = ?`, gid, uid)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ENOTFOUND, "%q is not a member of %q.", username, group)
		}
		return nil
	})
}

func groupAndUser(ctx context.Context, tx *sql.Tx, group, username string) (int64, int64, error) {
	gid, err := lookupID(ctx, tx, `SELECT id FROM groups WHERE name = ?`, group)
	if err != nil {
		return 0, 0, err
	} else if gid == 0 {
		return 0, 0, Errorf(ENOTFOUND, "Group %q not found.", group)
	}
	uid, err := lookupID(ctx, tx, `SELECT id FROM users WHERE username = ?`, username)
	if err != nil {
		return 0, 0, err
	} else if uid == 0 {
		return 0, 0, Errorf(ENOTFOUND, "User %q not found.", username)
	}
	return gid, uid, nil
}

// CheckGroupNames refuses a list of group names, such as an image's groups,
// that holds a blank name or the name of no group: an EINVALID error with
// the reason at "groups" (see groupIDs).
func (s *Store) CheckGroupNames(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	return s.readTx(ctx, func(tx *sql.Tx) error {
		_, reason, err := groupIDs(ctx, tx, names)
		if err == nil && reason != "" {
			err = Invalid(map[string]string{"groups": reason})
		}
		return err
	})
}

// groupIDs resolves group names, each as it is written, into the groups'
// ids. It is the one place of the rule on a list of group names: reason is
// why the list is refused ("" when it is not), a blank name first, else
// every unknown name, so that no name sent is dropped unread. A name listed
// twice is not refused (see distinct).
func groupIDs(ctx context.Context, tx *sql.Tx, names []string) (ids []int64, reason string, err error) {
	var unknown []string
	for _, name := range names {
		if strings.TrimSpace(name) == "" {
			return nil, "A group name is blank.", nil
		}
		id, err := lookupID(ctx, tx, `SELECT id FROM groups WHERE name = ?`, name)
		if err != nil {
			return nil, "", err
		} else if id == 0 {
			unknown = append(unknown, strconv.Quote(name))
			continue
		}
		ids = append(ids, id)
	}
	switch len(unknown) {
	case 0:
		return ids, "", nil
	case 1:
		return nil, "Unknown group " + unknown[0] + ".", nil
	}
	return nil, "Unknown groups " + strings.Join(unknown, ", ") + ".", nil
}

// distinct is names without the repeats, in their order: a group listed
// twice is granted once.
func distinct(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
