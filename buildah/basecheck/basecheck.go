// Package basecheck tells whether the base image a custom image was built on
// has moved: whether the registry's reference of the base (debian:bookworm,
// say) names another manifest now than the one the image's current build
// pinned in FROM. It asks the registry as the build does (the same outbound
// policy, the same pull credential) and records the answer in the store,
// which derives the image's "update available" mark from it. It reads
// registries only, through buildah/remote, and never links buildah.
package basecheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// DefaultInterval is how often every image's base is checked when
// --base-check-interval is not given.
const DefaultInterval = 6 * time.Hour

// Config is what a Checker is made of; main fills it.
type Config struct {
	Store *store.Store
	// Policy says where a check may connect: the server's outbound policy,
	// the one builds follow.
	Policy *remote.Policy
	// Insecure lists registry hosts (host[:port]) reached over plain http
	// or without verifying their certificate.
	Insecure []string
	// RegistryPullAuth is the pull-only account of the registry builds push
	// to, offered for a base on that registry (workerspec.PullAuth).
	RegistryPullAuth *remote.Auth
	// Interval is how often Run checks every image; 0 or less: never.
	Interval time.Duration
	Logger   *slog.Logger
}

// Checker compares the bases of built images with their registries.
type Checker struct {
	cfg      Config
	insecure map[string]bool
}

// New makes a Checker.
func New(cfg Config) *Checker {
	c := &Checker{cfg: cfg, insecure: map[string]bool{}}
	for _, h := range cfg.Insecure {
		c.insecure[h] = true
	}
	if c.cfg.Logger == nil {
		c.cfg.Logger = slog.Default()
	}
	return c
}

// RegistryError is a check that the base's registry did not answer (it
// could not be reached, refused the credential, or has no such tag any
// more). Nothing was recorded.
type RegistryError struct {
	// Reference is the base image that was asked about.
	Reference string
	Err       error
}

func (e *RegistryError) Error() string {
	return fmt.Sprintf("checking the base image %s: %s", e.Reference, workerspec.Reason(e.Err))
}

func (e *RegistryError) Unwrap() error { return e.Err }

// Check asks the registry what the base reference of the image's current
// build names now, records it (store.RecordBaseCheck) and returns the image
// with what is known of its base. An image that is not built, or whose
// current build did not record its base digest (it was built before
// imagehub recorded them), has nothing to compare: ECONFLICT. A registry
// that does not answer is a *RegistryError, and the image's mark stays as
// it was.
func (c *Checker) Check(ctx context.Context, name string) (*store.Image, error) {
	img, err := c.cfg.Store.FindImage(ctx, name)
	if err != nil {
		return nil, err
	}
	if img.Recipe == nil {
		return nil, store.Errorf(store.ECONFLICT, "Image %q is not a custom image: it has no base image to check.", name)
	}
	b, err := c.cfg.Store.CurrentBuild(ctx, name)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return nil, store.Errorf(store.ECONFLICT, "No build of image %q has succeeded yet: there is no base to compare.", name)
	} else if err != nil {
		return nil, err
	}
	if b.BaseDigest == "" {
		return nil, store.Errorf(store.ECONFLICT, "Build #%d of image %q did not record the base image it was built on; rebuild it to compare its base from then on.", b.ID, name)
	}
	digest, err := c.currentDigest(ctx, b)
	if err != nil {
		return nil, err
	}
	if err := c.cfg.Store.RecordBaseCheck(ctx, b.ID, digest); err != nil {
		return nil, err
	}
	return c.cfg.Store.FindImage(ctx, name)
}

// currentDigest asks the registry which manifest the base reference of
// build b names now, with the credential b's build pulled it with.
func (c *Checker) currentDigest(ctx context.Context, b *store.Build) (string, error) {
	base, err := remote.NormalizeReference(b.Recipe.BaseImage)
	if err != nil {
		return "", store.Errorf(store.ECONFLICT, "The base image of build #%d is not a valid reference: %s.", b.ID, err)
	}
	auth, err := workerspec.PullAuth(ctx, c.cfg.Store, b.Recipe, base, b.TargetImage, c.cfg.RegistryPullAuth)
	if err != nil {
		return "", store.Errorf(store.ECONFLICT, "The base image of build #%d cannot be pulled as it was: %s.", b.ID, workerspec.Reason(err))
	}
	digest, exists, err := c.cfg.Policy.TagExists(ctx, base, auth, c.insecure[remote.Host(base)])
	switch {
	case err != nil:
		return "", &RegistryError{Reference: base, Err: err}
	case !exists:
		return "", &RegistryError{Reference: base, Err: errors.New("the registry does not have it any more")}
	}
	return digest, nil
}

// Run checks every image whose current build recorded its base digest
// (store.ImagesWithBase) at once and then every Interval, until ctx is
// done; with no Interval it returns at once. A check that fails is logged
// and changes nothing: an unreachable registry never makes an update
// appear, nor disappear.
func (c *Checker) Run(ctx context.Context) {
	if c.cfg.Interval <= 0 {
		return
	}
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	for {
		c.CheckAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// CheckAll checks the base of every image that has one to compare, one
// image after the other, and logs what failed.
func (c *Checker) CheckAll(ctx context.Context) {
	names, err := c.cfg.Store.ImagesWithBase(ctx)
	if err != nil {
		c.cfg.Logger.Error("listing the images whose base to check", "err", err)
		return
	}
	moved := 0
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		img, err := c.Check(ctx, name)
		var regErr *RegistryError
		switch {
		case errors.As(err, &regErr):
			c.cfg.Logger.Warn("base check failed; the image's mark stays as it was", "image", name, "base", regErr.Reference, "err", regErr.Err)
		case err != nil:
			c.cfg.Logger.Info("base check skipped", "image", name, "err", err)
		case img.BaseUpdateAvailable:
			moved++
		}
	}
	c.cfg.Logger.Info("checked the base images", "images", len(names), "moved", moved)
}
