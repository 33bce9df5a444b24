package disk

import (
	"context"
	"errors"
	"os"
	"strings"

	"go.podman.io/image/v5/docker/reference"

	"imagehub/store"
)

// retain applies the retention of builds to one image: its builds older than
// the newest KeepBuilds lose their log and, in the embedded registry, their
// pushed tag and manifest, and are marked pruned. A tag stays while a kept
// build pushed to it (a rebuild of the same recipe, or one still running) or
// an image's URL names it; a manifest stays while a kept build or an image's
// URL names its digest.
func (k *Keeper) retain(ctx context.Context, image string) error {
	kept, expired, err := k.cfg.Store.BuildRetention(ctx, image, k.cfg.KeepBuilds)
	if err != nil || len(expired) == 0 {
		return err
	}
	if k.cfg.Registry != nil {
		if err := k.untagExpired(ctx, image, kept, expired); err != nil {
			return err
		}
	}
	ids := make([]int64, len(expired))
	var errs []error
	for i, b := range expired {
		ids[i] = b.ID
		if err := os.RemoveAll(k.cfg.Logs.Dir(b.ID)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, k.cfg.Store.MarkBuildsPruned(ctx, ids...))...)
}

// untagExpired deletes the pushed tags and manifests of expired builds that
// nothing kept names.
func (k *Keeper) untagExpired(ctx context.Context, image string, kept, expired []*store.Build) error {
	repo := k.repository(image)
	keep, err := k.referencesTo(ctx, repo)
	if err != nil {
		return err
	}
	for _, b := range kept {
		keep.add(repo, b.TargetImage)
		keep.digests[b.Digest] = true
	}
	var tags, manifests []string
	for _, b := range expired {
		r, ok := splitReference(b.TargetImage)
		if !ok || r.repo != repo || keep.tags[r.tag] {
			continue
		}
		tags = append(tags, r.tag)
		if b.Digest != "" && !keep.digests[b.Digest] {
			manifests = append(manifests, b.Digest)
		}
	}
	if len(tags) == 0 {
		return nil
	}
	return k.cfg.Registry.Delete(ctx, k.registryPath(repo), tags, manifests)
}

// deleteRepository deletes every tag and manifest of a repository of the
// embedded registry that no image's URL names (the repository goes when
// nothing is left).
func (k *Keeper) deleteRepository(ctx context.Context, repo string) error {
	if k.cfg.Registry == nil {
		return nil
	}
	keep, err := k.referencesTo(ctx, repo)
	if err != nil {
		return err
	}
	c, err := k.cfg.Registry.Contents(ctx, k.registryPath(repo))
	if err != nil {
		return err
	}
	var tags, manifests []string
	for tag, digest := range c.Tags {
		if keep.tags[tag] {
			keep.digests[digest] = true
		} else {
			tags = append(tags, tag)
		}
	}
	for _, m := range c.Manifests {
		if !keep.digests[m] {
			manifests = append(manifests, m)
		}
	}
	return k.cfg.Registry.Delete(ctx, k.registryPath(repo), tags, manifests)
}

// references are the tags and digests of one repository that something
// still names.
type references struct {
	tags, digests map[string]bool
}

// add adds ref when it is in repo.
func (r references) add(repo, ref string) {
	if p, ok := splitReference(ref); ok && p.repo == repo {
		if p.tag != "" {
			r.tags[p.tag] = true
		}
		if p.digest != "" {
			r.digests[p.digest] = true
		}
	}
}

// referencesTo collects what the URLs of all images name in a repository.
func (k *Keeper) referencesTo(ctx context.Context, repo string) (references, error) {
	refs := references{tags: map[string]bool{}, digests: map[string]bool{}}
	urls, err := k.cfg.Store.ImageURLsWithPrefix(ctx, repo)
	if err != nil {
		return refs, err
	}
	for _, u := range urls {
		refs.add(repo, u)
	}
	return refs, nil
}

// registryPath is a repository's path inside its registry, without the host.
func (k *Keeper) registryPath(repo string) string {
	_, path, _ := strings.Cut(repo, "/")
	return path
}

// retainAll applies the retention of builds to every image that has
// something to lose.
func (k *Keeper) retainAll(ctx context.Context) {
	names, err := k.cfg.Store.ImagesWithExpiredBuilds(ctx, k.cfg.KeepBuilds)
	if err != nil {
		k.cfg.Logger.Error("finding old builds", "err", err)
		return
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		if err := k.retain(ctx, name); err != nil && store.ErrorCode(err) != store.ENOTFOUND {
			k.cfg.Logger.Error("deleting the logs and tags of old builds", "image", name, "err", err)
		}
	}
	if len(names) > 0 {
		k.cfg.Logger.Info("deleted the logs and tags of old builds", "images", len(names), "keepBuilds", k.cfg.KeepBuilds)
	}
}

// referenceParts are the parts of an image reference.
type referenceParts struct {
	repo, tag, digest string
}

// splitReference splits a reference into its repository (host included),
// tag and digest.
func splitReference(ref string) (referenceParts, bool) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return referenceParts{}, false
	}
	p := referenceParts{repo: named.Name()}
	if t, ok := named.(reference.Tagged); ok {
		p.tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		p.digest = d.Digest().String()
	}
	return p, true
}
