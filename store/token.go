package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"
)

// TokenScope limits what an API token may do.
type TokenScope string

// The token scopes: read-only, or everything its user may do.
const (
	ScopeRead  TokenScope = "read"
	ScopeAdmin TokenScope = "admin"
)

// Token describes an API token; the secret value itself is never stored.
type Token struct {
	ID        int64      `json:"id"`
	Username  string     `json:"username"`
	Name      string     `json:"name"`
	Scope     TokenScope `json:"scope"`
	CreatedAt time.Time  `json:"createdAt"`
	// LastUsed is when the token was last used, up to a minute earlier
	// (lastUsedPrecision); nil: never.
	LastUsed *time.Time `json:"lastUsed"`
	// ExpiresAt is when the token stops working; nil: never.
	ExpiresAt *time.Time `json:"expiresAt"`
}

// Expired reports whether the token no longer works at now.
func (t *Token) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// CreateToken makes a new token for a user that never expires; see
// CreateTokenExpiring.
func (s *Store) CreateToken(ctx context.Context, username, name string, scope TokenScope) (string, *Token, error) {
	return s.CreateTokenExpiring(ctx, username, name, scope, nil)
}

// CreateTokenExpiring makes a new token for a user, refused from expiresAt
// on (nil: never), and returns its value, which is shown once: only its
// SHA-256 is kept. A change of the user's password revokes their tokens.
func (s *Store) CreateTokenExpiring(ctx context.Context, username, name string, scope TokenScope, expiresAt *time.Time) (string, *Token, error) {
	f := map[string]string{}
	if scope != ScopeRead && scope != ScopeAdmin {
		f["scope"] = `Scope must be "read" or "admin".`
	}
	if r := textReason(name, 100); r != "" {
		f["name"] = r
	}
	now := s.now()
	if expiresAt != nil && !expiresAt.After(now) {
		f["expiresAt"] = "Must be in the future."
	}
	if len(f) > 0 {
		return "", nil, Invalid(f)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	value := "ih_" + base64.RawURLEncoding.EncodeToString(raw)
	t := &Token{Username: username, Name: name, Scope: scope, CreatedAt: now}
	var expires sql.NullString
	if expiresAt != nil {
		// Stored as text to the microsecond, as every time here.
		e := parseTime(formatTime(*expiresAt))
		t.ExpiresAt, expires = &e, sql.NullString{String: formatTime(e), Valid: true}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		uid, err := lookupID(ctx, tx, `SELECT id FROM users WHERE username = ?`, username)
		if err != nil {
			return err
		} else if uid == 0 {
			return Errorf(ENOTFOUND, "User %q not found.", username)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (user_id, name, hash, scope, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			uid, name, tokenHash(value), scope, formatTime(t.CreatedAt), expires)
		if err != nil {
			return err
		}
		t.ID, _ = res.LastInsertId()
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return value, t, nil
}

// AuthenticateToken returns the user and scope a token value stands for;
// an expired token is EUNAUTHORIZED like an unknown one. The token's
// LastUsed is written when it is older than lastUsedPrecision, so that a
// client calling many times a second does not make each call a write.
func (s *Store) AuthenticateToken(ctx context.Context, value string) (*User, TokenScope, error) {
	var (
		username          string
		scope             TokenScope
		id                int64
		lastUsed, expires sql.NullString
	)
	err := s.rdb.QueryRowContext(ctx, `SELECT t.id, u.username, t.scope, t.last_used, t.expires_at FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?`,
		tokenHash(value)).Scan(&id, &username, &scope, &lastUsed, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", Errorf(EUNAUTHORIZED, "Invalid or revoked API token.")
	} else if err != nil {
		return nil, "", err
	}
	now := s.now()
	if t := (Token{ExpiresAt: parseNullTime(expires)}); t.Expired(now) {
		return nil, "", Errorf(EUNAUTHORIZED, "This API token expired at %s.", formatTime(*t.ExpiresAt))
	}
	if used := parseNullTime(lastUsed); used == nil || now.Sub(*used) >= lastUsedPrecision || now.Before(*used) {
		if _, err := s.db.ExecContext(ctx, `UPDATE tokens SET last_used = ? WHERE id = ?`, formatTime(now), id); err != nil {
			return nil, "", err
		}
	}
	u, err := s.FindUser(ctx, username)
	return u, scope, err
}

// lastUsedPrecision is how far behind a token's LastUsed may be.
const lastUsedPrecision = time.Minute

// ListTokens returns a user's tokens (all users' when username is "").
func (s *Store) ListTokens(ctx context.Context, username string) ([]*Token, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT t.id, u.username, t.name, t.scope, t.created_at, t.last_used, t.expires_at
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE ? = '' OR u.username = ? ORDER BY t.id`, username, username)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Token
	for rows.Next() {
		var (
			t                 Token
			created           string
			lastUsed, expires sql.NullString
		)
		if err := rows.Scan(&t.ID, &t.Username, &t.Name, &t.Scope, &created, &lastUsed, &expires); err != nil {
			return nil, err
		}
		t.CreatedAt, t.LastUsed, t.ExpiresAt = parseTime(created), parseNullTime(lastUsed), parseNullTime(expires)
		out = append(out, &t)
	}
	return out, rows.Err()
}

// RevokeToken deletes a token; username limits it to that user's tokens ("" for any).
func (s *Store) RevokeToken(ctx context.Context, id int64, username string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM tokens WHERE id = ? AND (? = '' OR user_id = (SELECT id FROM users WHERE username = ?))`, id, username, username)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Errorf(ENOTFOUND, "Token %d not found.", id)
	}
	return nil
}

func tokenHash(value string) string {
	h := sha256.Sum256([]byte(value))
	return hex.EncodeToString(h[:])
}
