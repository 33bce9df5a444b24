package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Secret is an image pull secret. Password is write-only: it is accepted on
// create and never returned by the store's listings.
type Secret struct {
	Name         string    `json:"name"`
	RegistryHost string    `json:"registryHost"`
	Username     string    `json:"username"`
	Password     string    `json:"password,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
}

// Validate checks a secret's fields.
func (sec *Secret) Validate() error {
	f := map[string]string{}
	if r := nameReason(sec.Name); r != "" {
		f["name"] = r
	}
	if r := hostReason(sec.RegistryHost); r != "" {
		f["registryHost"] = r
	}
	if sec.Username == "" {
		f["username"] = "Required."
	} else if r := textReason(sec.Username, 255); r != "" {
		f["username"] = r
	}
	if sec.Password == "" {
		f["password"] = "Required."
	} else if len(sec.Password) > 4096 {
		f["password"] = "At most 4096 characters."
	}
	if len(f) > 0 {
		return Invalid(f)
	}
	return nil
}

// CreateSecret stores a secret with its password encrypted.
func (s *Store) CreateSecret(ctx context.Context, sec *Secret) error {
	if err := sec.Validate(); err != nil {
		return err
	}
	sealed, err := s.cipher.seal(sec.Password)
	if err != nil {
		return err
	}
	sec.CreatedAt = s.now()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, registry_host, username, password_enc, created_at) VALUES (?, ?, ?, ?, ?)`,
			sec.Name, sec.RegistryHost, sec.Username, sealed, formatTime(sec.CreatedAt))
		if isUniqueViolation(err) {
			return Invalid(map[string]string{"name": "A secret with this name exists already."})
		}
		return err
	})
}

// PutSecret creates a secret or, when one of that name exists, replaces its
// host and credentials; images that use it keep using it. It is how
// imagehub keeps the secrets it makes itself (the embedded registry's pull
// secret) in step with their credentials.
func (s *Store) PutSecret(ctx context.Context, sec *Secret) error {
	if err := sec.Validate(); err != nil {
		return err
	}
	sealed, err := s.cipher.seal(sec.Password)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, registry_host, username, password_enc, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET registry_host = excluded.registry_host, username = excluded.username, password_enc = excluded.password_enc`,
			sec.Name, sec.RegistryHost, sec.Username, sealed, formatTime(s.now()))
		return err
	})
}

// ListSecrets returns every secret without its password.
func (s *Store) ListSecrets(ctx context.Context) ([]*Secret, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, registry_host, username, created_at FROM secrets ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Secret
	for rows.Next() {
		var (
			sec     Secret
			created string
		)
		if err := rows.Scan(&sec.Name, &sec.RegistryHost, &sec.Username, &created); err != nil {
			return nil, err
		}
		sec.CreatedAt = parseTime(created)
		out = append(out, &sec)
	}
	return out, rows.Err()
}

// DeleteSecret removes a secret; one still used by an image or by the
// package mirrors is refused.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM images i JOIN secrets s ON s.id = i.secret_id WHERE s.name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return Errorf(ECONFLICT, "Secret %q is used by %d image(s); change them first.", name, n)
		}
		if by, err := s.usedByPackageSettings(ctx, tx, name); err != nil {
			return err
		} else if by != "" {
			return Errorf(ECONFLICT, "Secret %q holds the credentials of a package mirror (%s); change that first.", name, by)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Errorf(ENOTFOUND, "Secret %q not found.", name)
		}
		return nil
	})
}

// SecretAuth returns a secret's registry host and decrypted credentials, for
// pulling and pushing only.
func (s *Store) SecretAuth(ctx context.Context, name string) (host, username, password string, err error) {
	var sealed []byte
	err = s.rdb.QueryRowContext(ctx, `SELECT registry_host, username, password_enc FROM secrets WHERE name = ?`, name).Scan(&host, &username, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", Errorf(ENOTFOUND, "Secret %q not found.", name)
	} else if err != nil {
		return "", "", "", err
	}
	password, err = s.cipher.open(sealed)
	return host, username, password, err
}
