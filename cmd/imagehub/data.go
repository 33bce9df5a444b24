package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"imagehub/store"
)

// dataDir is the folder that holds everything imagehub keeps: the database,
// the keys, build logs, the image storage and the embedded registry.
type dataDir string

// What the data folder holds, by name (below the folder).
const (
	databaseFile   = "imagehub.db"
	buildsFolder   = "builds"   // a folder per build: its log
	registryFolder = "registry" // the embedded registry's storage
	tmpFolder      = "tmp"      // the builds' temporary folders
	cacheFolder    = "cache"    // the package caches of RUN steps (cache/packages)
)

func (d dataDir) path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// openDataDir creates the folder when needed and opens its store. The folder
// is 0711, private to imagehub's user but for passing through: RUN steps,
// which run as subordinate ids, must reach their own build folder below it
// (tmp/); nobody else may list or read it. The database is 0600: it holds
// the sessions' secrets and the encrypted pull secrets, as do the key files.
func openDataDir(dir string) (dataDir, *store.Store, error) {
	if err := privateDir(dir); err != nil {
		return "", nil, err
	}
	d := dataDir(dir)
	key, err := d.secretKey()
	if err != nil {
		return "", nil, err
	}
	db := d.path(databaseFile)
	if err := privateDatabase(db); err != nil {
		return "", nil, err
	}
	st, err := store.Open(db, key)
	if err != nil {
		return "", nil, err
	}
	return d, st, nil
}

// dataDirMode is the data folder's mode: its owner's, and passable by RUN
// steps' subordinate ids on their way to tmp/.
const dataDirMode = 0o711

// privateDir makes dir when needed, and takes away the group's and others'
// access (but passing through) to a folder made before imagehub did so.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() == dataDirMode {
		return nil
	}
	if err := os.Chmod(dir, dataDirMode); err != nil {
		return fmt.Errorf("data folder %s is open to others (%v) and cannot be made private: %w", dir, fi.Mode().Perm(), err)
	}
	return nil
}

// privateDatabase creates the SQLite file at path as 0600 before SQLite
// does (SQLite would make it 0644, less the umask), and makes an existing
// one and its -wal and -shm files 0600. SQLite gives the -wal and -shm files
// it creates the mode of the database file.
func privateDatabase(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o600 {
			if err := os.Chmod(p, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// secretKey is the AES key of pull-secret passwords: IMAGEHUB_SECRET_KEY
// (64 hex digits or base64 of 32 bytes) when set, so that it can live apart
// from the database; else a key generated once into the data folder.
func (d dataDir) secretKey() ([]byte, error) {
	if v := strings.TrimSpace(os.Getenv("IMAGEHUB_SECRET_KEY")); v != "" {
		if k, err := hex.DecodeString(v); err == nil && len(k) == 32 {
			return k, nil
		}
		if k, err := base64.StdEncoding.DecodeString(v); err == nil && len(k) == 32 {
			return k, nil
		}
		return nil, fmt.Errorf("IMAGEHUB_SECRET_KEY must be 32 bytes, as 64 hex digits or base64")
	}
	return d.keyFile("secret.key", 32)
}

// keyFile reads a random key of n bytes, generating it on first use. Keys are
// made once so that sessions and secrets survive a restart.
func (d dataDir) keyFile(name string, n int) ([]byte, error) {
	path := d.path(name)
	if k, err := os.ReadFile(path); err == nil {
		if len(k) != n {
			return nil, fmt.Errorf("%s holds %d bytes, want %d", path, len(k), n)
		}
		return k, nil
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(k); err != nil {
		f.Close()
		return nil, err
	}
	return k, f.Close()
}

// bootstrapAdmin creates the user "admin" in an empty database, with the
// password from IMAGEHUB_ADMIN_PASSWORD or a random one printed once.
func bootstrapAdmin(ctx context.Context, st *store.Store, log io.Writer) error {
	n, err := st.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	password, printed := os.Getenv("IMAGEHUB_ADMIN_PASSWORD"), false
	if password == "" {
		b := make([]byte, 12)
		rand.Read(b)
		password, printed = base64.RawURLEncoding.EncodeToString(b), true
	}
	if err := st.CreateUser(ctx, &store.User{Username: "admin", Password: password, Admin: true}); err != nil {
		return fmt.Errorf("create admin: %s", describe(err))
	}
	if printed {
		fmt.Fprintf(log, "created user admin with password %s (shown once; set IMAGEHUB_ADMIN_PASSWORD to choose it)\n", password)
	} else {
		fmt.Fprintln(log, "created user admin with the password from IMAGEHUB_ADMIN_PASSWORD")
	}
	return nil
}
