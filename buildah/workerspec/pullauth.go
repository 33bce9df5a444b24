package workerspec

import (
	"context"
	"fmt"

	"imagehub/buildah/remote"
	"imagehub/store"
)

// SecretSource gives the registry host and credentials of a named pull
// secret (the store's SecretAuth).
type SecretSource interface {
	SecretAuth(ctx context.Context, name string) (host, username, password string, err error)
}

// PullAuth is the credential that a build of recipe r, pushing to target,
// pulls its base image base (normalised) with; the base check asks the
// registry about the base with the same one. It is the recipe's pull
// secret, which goes to no other registry host than its own (a secret for
// another host is an error); without one, registryPull (the embedded
// registry's pull-only account) when the base is on the registry builds
// push to; else none.
func PullAuth(ctx context.Context, secrets SecretSource, r store.Recipe, base, target string, registryPull *remote.Auth) (*remote.Auth, error) {
	if r.PullSecret == "" {
		if registryPull != nil && remote.SameHost(remote.Host(base), remote.Host(target)) {
			return registryPull, nil
		}
		return nil, nil
	}
	host, user, pass, err := secrets.SecretAuth(ctx, r.PullSecret)
	if err != nil {
		return nil, fmt.Errorf("pull secret %q: %w", r.PullSecret, err)
	}
	if reg := remote.Host(base); !remote.SameHost(host, reg) {
		return nil, fmt.Errorf("pull secret %q is for %s, but the base image is on %s", r.PullSecret, host, reg)
	}
	return &remote.Auth{Username: user, Password: pass}, nil
}
