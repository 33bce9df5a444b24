package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// User is someone who signs in. Password is write-only.
type User struct {
	Username string `json:"username"`
	Password string `json:"password,omitempty"`
	Admin    bool   `json:"admin"`
	// SessionEpoch grows with every password change; older sessions end.
	SessionEpoch int64 `json:"-"`
	// Groups are the groups the user belongs to, by group name.
	Groups    []Membership `json:"groups"`
	CreatedAt time.Time    `json:"createdAt"`
}

// Membership is one group a user belongs to, and their role in it: the
// user's side of a group's Member.
type Membership struct {
	Group string `json:"group"`
	Role  Role   `json:"role"`
}

// RoleIn returns the user's role in a group, and false when they are not
// one of its members.
func (u *User) RoleIn(group string) (Role, bool) {
	for _, m := range u.Groups {
		if m.Group == group {
			return m.Role, true
		}
	}
	return "", false
}

// Administers reports whether the user is a group admin of the group.
func (u *User) Administers(group string) bool {
	role, ok := u.RoleIn(group)
	return ok && role == RoleAdmin
}

// AdministeredGroups lists, by name, the groups of which the user is a
// group admin.
func (u *User) AdministeredGroups() []string {
	var out []string
	for _, m := range u.Groups {
		if m.Role == RoleAdmin {
			out = append(out, m.Group)
		}
	}
	return out
}

var usernameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62})$`)

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// MaxPasswordBytes is the longest password accepted, in bytes: bcrypt reads
// no further, so a longer one would sign in with any ending. No password
// over it is set (passwordReason) nor signs in (Authenticate).
const MaxPasswordBytes = 72

func (u *User) validate(needPassword bool) error {
	f := map[string]string{}
	if !usernameRE.MatchString(u.Username) {
		f["username"] = "1 to 63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit."
	}
	if r := passwordReason(u.Password, needPassword); r != "" {
		f["password"] = r
	}
	if len(f) > 0 {
		return Invalid(f)
	}
	return nil
}

// passwordReason is the one rule on a password being set (by every path
// that sets one: CreateUser and SetPassword), or "" when p may be set;
// need says whether an empty p is missing. Its length is counted in
// characters from below and in bytes, as bcrypt reads it, from above.
func passwordReason(p string, need bool) string {
	switch {
	case p == "" && need:
		return "Required."
	case p != "" && utf8.RuneCountInString(p) < MinPasswordLen:
		return fmt.Sprintf("At least %d characters.", MinPasswordLen)
	case len(p) > MaxPasswordBytes:
		return fmt.Sprintf("At most %d bytes: bcrypt ignores the rest.", MaxPasswordBytes)
	}
	return ""
}

// CreateUser stores a new user with a bcrypt hash of the password.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if err := u.validate(true); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	u.CreatedAt, u.Password, u.Groups = s.now(), "", []Membership{}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (username, password_hash, admin, created_at) VALUES (?, ?, ?, ?)`,
			u.Username, string(hash), u.Admin, formatTime(u.CreatedAt))
		if isUniqueViolation(err) {
			return Invalid(map[string]string{"username": "This username is taken."})
		}
		return err
	})
}

// CountUsers tells whether the database is new (no users yet).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, err
}

// Authenticate returns the user when the password matches. A wrong username
// and a wrong password give the same error, so usernames cannot be probed.
// A password over MaxPasswordBytes never matches: no such password is set,
// and bcrypt would compare its first MaxPasswordBytes only.
func (s *Store) Authenticate(ctx context.Context, username, password string) (*User, error) {
	if len(password) > MaxPasswordBytes {
		return nil, wrongCredentials()
	}
	var hash string
	err := s.db.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE username = ?`, username).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the same time as a real check.
		bcrypt.CompareHashAndPassword([]byte("$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z6kQ5a9qvF.x1z6zC8nW4l3C"), []byte(password))
		return nil, wrongCredentials()
	} else if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return nil, wrongCredentials()
	}
	return s.FindUser(ctx, username)
}

// wrongCredentials is Authenticate's one answer to a failed sign-in.
func wrongCredentials() error { return Errorf(EUNAUTHORIZED, "Wrong username or password.") }

// FindUser returns a user with the groups they belong to.
func (s *Store) FindUser(ctx context.Context, username string) (*User, error) {
	var u *User
	err := s.inReadTx(ctx, func(tx *sql.Tx) (err error) {
		u, err = s.findUser(ctx, tx, username)
		return err
	})
	return u, err
}

func (s *Store) findUser(ctx context.Context, tx *sql.Tx, username string) (*User, error) {
	var (
		u       User
		id      int64
		created string
	)
	err := tx.QueryRowContext(ctx, `SELECT id, username, admin, session_epoch, created_at FROM users WHERE username = ?`, username).
		Scan(&id, &u.Username, &u.Admin, &u.SessionEpoch, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "User %q not found.", username)
	} else if err != nil {
		return nil, err
	}
	u.CreatedAt, u.Groups = parseTime(created), []Membership{}
	rows, err := tx.QueryContext(ctx, `SELECT g.name, m.role FROM memberships m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.name`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.Group, &m.Role); err != nil {
			return nil, err
		}
		u.Groups = append(u.Groups, m)
	}
	return &u, rows.Err()
}

// ListUsers returns every user, by username.
func (s *Store) ListUsers(ctx context.Context) ([]*User, error) {
	var us []*User
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT username FROM users ORDER BY username`)
		if err != nil {
			return err
		}
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			names = append(names, n)
		}
		rows.Close()
		for _, n := range names {
			u, err := s.findUser(ctx, tx, n)
			if err != nil {
				return err
			}
			us = append(us, u)
		}
		return nil
	})
	return us, err
}

// SetPassword changes a user's password, ends all their sessions and
// revokes their API tokens: whoever had the old password may have made them.
func (s *Store) SetPassword(ctx context.Context, username, password string) error {
	if r := passwordReason(password, true); r != "" {
		return Invalid(map[string]string{"password": r})
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1 WHERE username = ?`, string(hash), username)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ENOTFOUND, "User %q not found.", username)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM tokens WHERE user_id = (SELECT id FROM users WHERE username = ?)`, username)
		return err
	})
}

// SetAdmin makes or unmakes a user an administrator.
func (s *Store) SetAdmin(ctx context.Context, username string, admin bool) error {
	return s.updateUser(ctx, username, `UPDATE users SET admin = ? WHERE username = ?`, admin, username)
}

// DeleteUser removes a user, their memberships and tokens.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	return s.updateUser(ctx, username, `DELETE FROM users WHERE username = ?`, username)
}

func (s *Store) updateUser(ctx context.Context, username, query string, args ...any) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ENOTFOUND, "User %q not found.", username)
		}
		return nil
	})
}
