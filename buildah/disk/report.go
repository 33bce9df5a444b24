package disk

import (
	"context"
	"time"

	"imagehub/buildah/mounts"
	"imagehub/buildah/registry"
	"imagehub/buildah/workerspec"
)

// Report is what the disk page shows: what each part of imagehub takes, the
// free space, the settings that bound them, and the garbage collections.
type Report struct {
	// Registry, Cache and Logs are the bytes the embedded registry's
	// folder, the layer cache and the build logs take on disk.
	Registry, Cache, Logs int64
	// CacheImages counts the images of the layer cache.
	CacheImages int
	// CacheError says why the cache could not be measured ("" when it was).
	CacheError string
	// Free is the free space of the data folder's file system.
	Free int64
	// Embedded tells whether builds are pushed to the embedded registry,
	// whose garbage imagehub collects; the rest of the registry fields are
	// about it.
	Embedded bool
	// Reclaimable is what a garbage collection would free now (a dry run).
	Reclaimable registry.GCResult
	// ReclaimableError says why the dry run failed ("" when it did not).
	ReclaimableError string
	// LastGC is the last garbage collection; nil before the first.
	LastGC *GCRun
	// The settings: --keep-builds, --cache-size, --min-free-disk,
	// --gc-interval.
	KeepBuilds  int
	CacheSize   int64
	MinFreeDisk int64
	GCInterval  time.Duration
	// MeasuredAt is when these figures were measured.
	MeasuredAt time.Time
}

// reportMaxAge is how long a measured report is shown again before it is
// measured anew, unless a build ends, an image is deleted or a garbage
// collection runs first. Measuring starts a worker process for the layer
// cache and reads every manifest of the registry: seconds on a registry of
// a year, and one measurement per page view would let a few open disk
// pages load the machine.
const reportMaxAge = 30 * time.Second

// Report is what imagehub keeps on disk, measured at most once every
// reportMaxAge (and again after a change that frees or takes space):
// viewers at the same time share one measurement.
func (k *Keeper) Report(ctx context.Context) (Report, error) {
	k.reportMu.Lock()
	defer k.reportMu.Unlock()
	changes := k.changes.Load()
	if r := k.report; r != nil && k.reportAt == changes && time.Since(r.MeasuredAt) < reportMaxAge {
		return *r, nil
	}
	r, err := k.measure(ctx)
	if err == nil {
		k.report, k.reportAt = &r, changes
	}
	return r, err
}

// reportChanged makes the next Report measure again.
func (k *Keeper) reportChanged() { k.changes.Add(1) }

// measure measures what imagehub keeps on disk. It reads only; the layer
// cache is measured by a worker process, and the dry run of the garbage
// collection reads every manifest of the registry.
func (k *Keeper) measure(ctx context.Context) (Report, error) {
	r := Report{
		MeasuredAt: time.Now(),
		Embedded:   k.cfg.Registry != nil, LastGC: k.LastGC(), KeepBuilds: k.cfg.KeepBuilds,
		CacheSize: k.cfg.CacheSize, MinFreeDisk: k.cfg.MinFreeDisk, GCInterval: k.cfg.GCInterval,
	}
	var err error
	if r.Free, err = k.cfg.FreeSpace(); err != nil {
		return r, err
	}
	if r.Logs, err = mounts.DiskUsage(k.cfg.Logs.Root()); err != nil {
		return r, err
	}
	if k.cfg.Queue != nil {
		var cache workerspec.CacheResult
		if cache, err = k.cfg.Queue.CacheUsage(ctx); err != nil {
			r.CacheError = workerspec.Reason(err)
		}
		r.Cache, r.CacheImages = cache.Size, cache.Images
	}
	if k.cfg.Registry == nil {
		return r, nil
	}
	if r.Registry, err = mounts.DiskUsage(k.cfg.Registry.Dir()); err != nil {
		return r, err
	}
	if r.Reclaimable, err = k.cfg.Registry.CollectGarbage(ctx, true); err != nil {
		r.ReclaimableError = workerspec.Reason(err)
	}
	return r, nil
}
