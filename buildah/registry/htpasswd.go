package registry

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// WriteHtpasswd writes an htpasswd file, readable only by its owner, that
// holds users (name → password) as bcrypt hashes, the one scheme the
// registry accepts.
func WriteHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for name := range users {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		hash, err := bcrypt.GenerateFromPassword([]byte(users[name]), bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s\n", name, hash)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
