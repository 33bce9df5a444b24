package worker

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"

	"imagehub/buildah/mounts"
	"imagehub/buildah/workerspec"
)

// The store the workers share is their layer cache, and it is bounded
// (--cache-size): images go least recently used first. containers/storage
// does not record when an image was last used, so each build records it
// itself, as the modification time of an empty file per image in useDir of
// the graph root; an image without one counts as used when it was created.

// useDir is the folder of the graph root that records when images were used.
const useDir = "imagehub-cache-use"

// recordUse records that a build used the image with id now: the image
// itself and every image it was built on, whose layers are its own
// lower layers (its base, and the cached steps of the same build).
func recordUse(store storage.Store, graphRoot, id string) error {
	img, err := store.Image(id)
	if err != nil {
		return err
	}
	chain := map[string]bool{}
	for l := img.TopLayer; l != ""; {
		chain[l] = true
		layer, err := store.Layer(l)
		if err != nil {
			return err
		}
		l = layer.Parent
	}
	images, err := store.Images()
	if err != nil {
		return err
	}
	dir := filepath.Join(graphRoot, useDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	var errs []error
	for _, im := range images {
		if chain[im.TopLayer] {
			errs = append(errs, touch(filepath.Join(dir, im.ID), now))
		}
	}
	return errors.Join(errs...)
}

// touch creates an empty file when needed and sets its times to t.
func touch(path string, t time.Time) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chtimes(path, t, t)
}

// CacheUsage measures the layer cache: what its folder takes on disk and how
// many images it holds. It changes nothing.
func CacheUsage(s workerspec.Storage) (workerspec.CacheResult, error) {
	store, err := OpenStore(s)
	if err != nil {
		return workerspec.CacheResult{}, err
	}
	images, err := store.Images()
	if err != nil {
		return workerspec.CacheResult{}, fmt.Errorf("listing images: %w", err)
	}
	size, err := mounts.DiskUsage(s.GraphRoot)
	return workerspec.CacheResult{Size: size, Images: len(images)}, err
}

// CleanCache removes images from the layer cache: first those named only in
// the repositories of c.RemoveRepositories (images deleted from imagehub),
// then, while the cache takes more than c.Limit on disk, the least recently
// used ones (an image and the images it was built on count as used together;
// among them the newest goes first, so that each removal frees the layer
// on top). Images used within c.KeepRecent stay whatever the limit, and so do
// images a container uses. Layers that no image or container uses any more
// are removed with the last image that used them.
//
// It must not run while a build uses the store: a build that found a cached
// step could lose it before using it. imagehub runs it from the queue when no
// build runs. The store stays open when it returns.
func CleanCache(s workerspec.Storage, c workerspec.CacheCleanup) (workerspec.CacheResult, error) {
	store, err := OpenStore(s)
	if err != nil {
		return workerspec.CacheResult{}, err
	}
	before, err := mounts.DiskUsage(s.GraphRoot)
	if err != nil {
		return workerspec.CacheResult{}, fmt.Errorf("measuring the cache: %w", err)
	}
	removed, err := removeRepositories(store, c.RemoveRepositories)
	if err != nil {
		return workerspec.CacheResult{}, err
	}
	if c.Limit > 0 {
		size := before
		if removed > 0 {
			if size, err = mounts.DiskUsage(s.GraphRoot); err != nil {
				return workerspec.CacheResult{}, err
			}
		}
		n, err := evict(store, s.GraphRoot, size, c)
		if err != nil {
			return workerspec.CacheResult{}, err
		}
		removed += n
	}
	if err := store.GarbageCollect(); err != nil {
		return workerspec.CacheResult{}, fmt.Errorf("removing what no image uses: %w", err)
	}
	res, err := CacheUsage(s)
	if err != nil {
		return workerspec.CacheResult{}, err
	}
	res.Removed, res.Freed = removed, max(before-res.Size, 0)
	return res, forgetRemoved(store, s.GraphRoot)
}

// removeRepositories removes the images whose every name is in one of the
// repositories repos ("host/path/name", no tag), and takes those names off
// images that have others too. It returns how many images it removed.
func removeRepositories(store storage.Store, repos []string) (int, error) {
	if len(repos) == 0 {
		return 0, nil
	}
	images, err := store.Images()
	if err != nil {
		return 0, fmt.Errorf("listing images: %w", err)
	}
	removed := 0
	for _, img := range images {
		var gone []string
		for _, name := range img.Names {
			if named, err := reference.ParseNormalizedNamed(name); err == nil && slices.Contains(repos, named.Name()) {
				gone = append(gone, name)
			}
		}
		switch {
		case len(gone) == 0:
		case len(gone) < len(img.Names):
			if err := store.RemoveNames(img.ID, gone); err != nil {
				return removed, fmt.Errorf("untagging image %s: %w", shortID(img.ID), err)
			}
		default:
			if _, err := store.DeleteImage(img.ID, true); errors.Is(err, storage.ErrImageUsedByContainer) {
				continue
			} else if err != nil {
				return removed, fmt.Errorf("removing image %s: %w", shortID(img.ID), err)
			}
			removed++
		}
	}
	return removed, nil
}

// evict removes the least recently used images while the cache, of size
// bytes now, takes more than c.Limit, and returns how many it removed.
func evict(store storage.Store, graphRoot string, size int64, c workerspec.CacheCleanup) (int, error) {
	if size <= c.Limit {
		return 0, nil
	}
	images, err := store.Images()
	if err != nil {
		return 0, fmt.Errorf("listing images: %w", err)
	}
	used := lastUses(graphRoot, images)
	slices.SortFunc(images, func(a, b storage.Image) int {
		return cmp.Or(used[a.ID].Compare(used[b.ID]), b.Created.Compare(a.Created))
	})
	recent := time.Now().Add(-c.KeepRecent)
	removed := 0
	for _, img := range images {
		if size <= c.Limit || used[img.ID].After(recent) {
			break
		}
		layers, err := store.DeleteImage(img.ID, true)
		if errors.Is(err, storage.ErrImageUsedByContainer) {
			continue
		} else if err != nil {
			return removed, fmt.Errorf("removing image %s: %w", shortID(img.ID), err)
		}
		removed++
		if len(layers) > 0 {
			if size, err = mounts.DiskUsage(graphRoot); err != nil {
				return removed, err
			}
		}
	}
	return removed, nil
}

// lastUses is when each image was last used: its file in useDir, or when
// it was created.
func lastUses(graphRoot string, images []storage.Image) map[string]time.Time {
	out := make(map[string]time.Time, len(images))
	for _, img := range images {
		out[img.ID] = img.Created
		if fi, err := os.Stat(filepath.Join(graphRoot, useDir, img.ID)); err == nil {
			out[img.ID] = fi.ModTime()
		}
	}
	return out
}

// forgetRemoved removes the use records of images the store no longer has.
func forgetRemoved(store storage.Store, graphRoot string) error {
	ents, err := os.ReadDir(filepath.Join(graphRoot, useDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if _, err := store.Image(e.Name()); errors.Is(err, storage.ErrImageUnknown) {
			errs = append(errs, os.Remove(filepath.Join(graphRoot, useDir, e.Name())))
		}
	}
	return errors.Join(errs...)
}
