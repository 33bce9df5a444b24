package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/distribution/distribution/v3/registry/api/errcode"
)

// Account is a user name and password that the registry accepts.
type Account struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Accounts are the two accounts of the embedded registry. Push may read and
// write (the build workers, `imagehub base-images`); Pull may only read (the
// ready pull secret that launchers and nodes pull built images with).
// Nobody may delete, and a request without one of them is refused.
type Accounts struct {
	Push Account `json:"push"`
	Pull Account `json:"pull"`
}

// The user names of the generated accounts.
const (
	PushUser = "imagehub-push"
	PullUser = "imagehub-pull"
)

// passwordBytes is the randomness of a generated password: 256 bits, so that
// guessing is hopeless and a fast comparison is as safe as bcrypt.
const passwordBytes = 32

// LoadOrCreateAccounts reads the accounts kept in the file at path, or
// generates two with random passwords and writes them there first, readable
// only by their owner. The passwords are kept as they are, not hashed:
// imagehub hands them to its workers and to the ready pull secret.
func LoadOrCreateAccounts(path string) (Accounts, error) {
	acc, err := ReadAccounts(path)
	if !errors.Is(err, os.ErrNotExist) {
		return acc, err
	}
	if acc, err = newAccounts(); err != nil {
		return Accounts{}, err
	}
	data, err := json.MarshalIndent(acc, "", "  ")
	if err != nil {
		return Accounts{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Made meanwhile by another imagehub command on the same data folder.
		return ReadAccounts(path)
	} else if err != nil {
		return Accounts{}, fmt.Errorf("registry accounts: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		os.Remove(path)
		return Accounts{}, fmt.Errorf("registry accounts: %w", err)
	}
	return acc, nil
}

// ReadAccounts reads the accounts that LoadOrCreateAccounts kept at path,
// for a command that must use the accounts of a running registry and not
// make new ones.
func ReadAccounts(path string) (Accounts, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Accounts{}, fmt.Errorf("registry accounts: %w", err)
	}
	var acc Accounts
	if err := json.Unmarshal(data, &acc); err != nil {
		return Accounts{}, fmt.Errorf("registry accounts %s: %w", path, err)
	}
	if err := acc.check(); err != nil {
		return Accounts{}, fmt.Errorf("registry accounts %s: %w", path, err)
	}
	return acc, nil
}

// newAccounts generates the two accounts with random passwords.
func newAccounts() (Accounts, error) {
	acc := Accounts{Push: Account{Username: PushUser}, Pull: Account{Username: PullUser}}
	for _, a := range []*Account{&acc.Push, &acc.Pull} {
		b := make([]byte, passwordBytes)
		if _, err := rand.Read(b); err != nil {
			return Accounts{}, err
		}
		a.Password = base64.RawURLEncoding.EncodeToString(b)
	}
	return acc, nil
}

// check refuses accounts that could not tell their users apart or that
// anybody could guess.
func (acc Accounts) check() error {
	for _, a := range []Account{acc.Push, acc.Pull} {
		if a.Username == "" || len(a.Password) < 16 {
			return errors.New("each account needs a user name and a password of at least 16 characters")
		}
	}
	if acc.Push.Username == acc.Pull.Username {
		return errors.New("the push and pull accounts need different user names")
	}
	return nil
}

// role is what an authenticated request may do.
type role int

const (
	roleNone role = iota
	rolePull
	rolePush
)

// accessControl guards the registry: every request needs one of the two
// accounts (else 401 with a Basic challenge), the pull account may only read
// (GET, HEAD), the push account may also upload (POST, PUT, PATCH), and
// nobody may delete or use any other method.
//
// It replaces distribution's own htpasswd authentication rather than sitting
// behind it: that scheme treats every user alike, so it cannot make an
// account read-only, and it runs bcrypt on every request. The passwords here
// are 256 random bits, so comparing SHA-256 sums in constant time is enough.
type accessControl struct {
	push, pull credential
	next       http.Handler
}

// credential is an account as the access control compares it.
type credential struct {
	user     string
	password [sha256.Size]byte
}

func newAccessControl(acc Accounts, next http.Handler) *accessControl {
	cred := func(a Account) credential {
		return credential{user: a.Username, password: sha256.Sum256([]byte(a.Password))}
	}
	return &accessControl{push: cred(acc.Push), pull: cred(acc.Pull), next: next}
}

// realm is the realm of the Basic challenge.
const realm = "imagehub"

// ServeHTTP authenticates and authorizes a request, then passes it on.
func (a *accessControl) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	ro := a.authenticate(r)
	switch {
	case ro == roleNone:
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
		errcode.ServeJSON(w, errcode.ErrorCodeUnauthorized)
	case !methodAllowed(r.Method, rolePush):
		errcode.ServeJSON(w, errcode.ErrorCodeUnsupported.WithMessage("this registry does not allow "+r.Method))
	case !methodAllowed(r.Method, ro):
		errcode.ServeJSON(w, errcode.ErrorCodeDenied.WithMessage("this account may only pull"))
	default:
		a.next.ServeHTTP(w, r)
	}
}

// authenticate says which account a request's Basic credentials are.
func (a *accessControl) authenticate(r *http.Request) role {
	user, password, ok := r.BasicAuth()
	if !ok {
		return roleNone
	}
	sum := sha256.Sum256([]byte(password))
	for _, c := range []struct {
		credential
		role
	}{{a.push, rolePush}, {a.pull, rolePull}} {
		if user == c.user && subtle.ConstantTimeCompare(sum[:], c.password[:]) == 1 {
			return c.role
		}
	}
	return roleNone
}

// methodAllowed reports whether a role may use an HTTP method. Writing to a
// registry is POST (start an upload, mount a blob), PATCH (upload a chunk)
// and PUT (finish an upload, put a manifest); DELETE is allowed to nobody.
func methodAllowed(method string, ro role) bool {
	switch method {
	case http.MethodGet, http.MethodHead:
		return ro >= rolePull
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return ro >= rolePush
	}
	return false
}
