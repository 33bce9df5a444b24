package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"imagehub/buildah/disk"
)

// diskSettings are the flags that bound the disk imagehub uses.
type diskSettings struct {
	keepBuilds  int
	cacheSize   int64
	minFreeDisk int64
	gcInterval  time.Duration
}

// diskFlags are the disk flags as typed, until parse checks them.
type diskFlags struct {
	keepBuilds             *int
	cacheSize, minFreeDisk *string
	gcInterval             *time.Duration
}

// addDiskFlags declares the disk flags on fs, each with its IMAGEHUB_*
// variable as its default.
func addDiskFlags(fs *flag.FlagSet) diskFlags {
	return diskFlags{
		keepBuilds: fs.Int("keep-builds", envInt("IMAGEHUB_KEEP_BUILDS", disk.DefaultKeepBuilds),
			"the newest builds of each image that keep their log and pushed tag; older ones lose them (0 keeps all)"),
		cacheSize: fs.String("cache-size", envOr("IMAGEHUB_CACHE_SIZE", strconv.Itoa(disk.DefaultCacheSize>>30)+"GiB"),
			"the layer cache's bound, such as 20GiB: past it the least recently used images go, after each build (0: no bound)"),
		minFreeDisk: fs.String("min-free-disk", envOr("IMAGEHUB_MIN_FREE_DISK", strconv.Itoa(disk.DefaultMinFreeDisk>>30)+"GiB"),
			"queued builds wait while the data folder's disk has less free space, such as 5GiB (0: never)"),
		gcInterval: fs.Duration("gc-interval", envDuration("IMAGEHUB_GC_INTERVAL", disk.DefaultGCInterval),
			"how often the embedded registry's garbage is collected (0: only from the disk page)"),
	}
}

// parse checks the disk flags.
func (f diskFlags) parse() (diskSettings, error) {
	s := diskSettings{keepBuilds: *f.keepBuilds, gcInterval: *f.gcInterval}
	var err error
	if s.cacheSize, err = parseSize(*f.cacheSize); err != nil {
		return s, fmt.Errorf("--cache-size %q is not a size such as 20GiB", *f.cacheSize)
	}
	if s.minFreeDisk, err = parseSize(*f.minFreeDisk); err != nil {
		return s, fmt.Errorf("--min-free-disk %q is not a size such as 5GiB", *f.minFreeDisk)
	}
	if s.keepBuilds < 0 {
		return s, fmt.Errorf("--keep-builds must be 0 (keep all) or more")
	}
	if s.gcInterval < 0 {
		return s, fmt.Errorf("--gc-interval must be 0 (only when asked) or more")
	}
	return s, nil
}

// gcStateFile keeps the last garbage collection's result, in the data folder.
const gcStateFile = "registry-gc.json"

// startDiskKeeper makes the disk keeper (the queue must exist: the keeper
// runs its collections from it) and starts its schedule.
func (a *app) startDiskKeeper(ctx context.Context) error {
	s := a.cfg.disk
	k, err := disk.New(disk.Config{
		Store: a.store, Logs: a.logs, Queue: a.queue, Registry: a.registryAdmin, RegistryPrefix: a.prefix,
		DataDir: string(a.data), KeepBuilds: s.keepBuilds, GCInterval: s.gcInterval, MinFreeDisk: s.minFreeDisk,
		CacheSize: s.cacheSize, StateFile: a.data.path(gcStateFile), Logger: a.logger,
	})
	if err != nil {
		return err
	}
	a.disk = k
	go k.Run(ctx)
	return nil
}
