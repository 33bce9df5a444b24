// Package disk bounds what imagehub keeps on disk. Every build leaves layers
// in the layer cache (the store the workers share), blobs in the registry and
// a log; the Keeper takes them away again:
//   - an image deleted from imagehub loses its tags in the embedded registry
//     and its images in the layer cache (ImagesDeleted);
//   - builds older than the newest KeepBuilds of their image lose their log
//     and their pushed tag, unless an image still points at that tag
//     (BuildFinished, retention.go);
//   - the embedded registry's garbage collection runs on a schedule and when
//     an administrator asks (CollectGarbage, gc.go), from the build queue, so
//     that no build pushes meanwhile;
//   - queued builds wait while the disk is nearly full (Hold);
//   - Report says what each part takes, and what a collection would free.
//
// The layer cache's own bound (--cache-size) is the queue's (CacheSize): the
// cache is reached through worker processes only.
package disk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/mounts"
	"imagehub/buildah/registry"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// Defaults of the settings.
const (
	DefaultKeepBuilds  = 10
	DefaultGCInterval  = 24 * time.Hour
	DefaultMinFreeDisk = 5 << 30
	DefaultCacheSize   = 20 << 30
)

// Queue is what the Keeper needs of the build queue (queue.Queue): to run
// work that must not overlap a build, to have the layer cache forget the
// images of deleted images, and to measure the cache.
type Queue interface {
	Do(name string, drain bool, run func(context.Context) error)
	ForgetImages(repos ...string)
	CacheUsage(ctx context.Context) (workerspec.CacheResult, error)
}

// Config is what a Keeper needs; Store, Logs, DataDir and RegistryPrefix
// are required.
type Config struct {
	Store *store.Store
	Logs  *buildlog.Hub
	// Queue runs the garbage collection and the layer cache's clean-ups;
	// nil: there are none (a server that does not build).
	Queue Queue
	// Registry is the embedded registry's storage; nil when builds are
	// pushed to another registry, whose tags and garbage imagehub leaves
	// alone (logs are still deleted).
	Registry *registry.Admin
	// RegistryPrefix is where builds are pushed, HOST[:PORT]/PREFIX: the
	// repository of image NAME is RegistryPrefix/NAME.
	RegistryPrefix string
	// DataDir is the data folder: its file system's free space is what
	// MinFreeDisk is about.
	DataDir string
	// KeepBuilds is how many of each image's newest builds keep their log
	// and pushed tag; zero or less keeps every build's.
	KeepBuilds int
	// GCInterval is how often the registry's garbage is collected; zero or
	// less: only when asked.
	GCInterval time.Duration
	// MinFreeDisk holds queued builds while the data folder's file system
	// has less free space, in bytes; zero: never.
	MinFreeDisk int64
	// CacheSize is the layer cache's bound, for Report (the queue keeps it).
	CacheSize int64
	// FreeSpace says how many bytes are free for the data folder; nil means
	// mounts.FreeSpace(DataDir). Tests drive it.
	FreeSpace func() (int64, error)
	// StateFile keeps the last garbage collection's result across restarts;
	// empty keeps it in memory only.
	StateFile string
	// Logger gets what goes wrong; nil means slog.Default().
	Logger *slog.Logger
}

// Keeper bounds the disk imagehub uses (see the package's doc). Its methods
// are safe for concurrent use.
type Keeper struct {
	cfg Config

	mu sync.Mutex
	// lastGC is the last garbage collection, nil before the first.
	lastGC *GCRun
	// holdFailed remembers that FreeSpace failed, so that it is logged once.
	holdFailed bool

	// reportMu lets one Report measure at a time (the others wait for its
	// result); report is the last one measured, when changes stood at
	// reportAt; changes counts what freed or took space (reportChanged).
	reportMu sync.Mutex
	report   *Report
	reportAt uint64
	changes  atomic.Uint64
}

// New checks cfg and returns a Keeper; call Run to start its schedule.
func New(cfg Config) (*Keeper, error) {
	if cfg.Store == nil || cfg.Logs == nil || cfg.DataDir == "" || cfg.RegistryPrefix == "" {
		return nil, errors.New("disk: Store, Logs, DataDir and RegistryPrefix are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FreeSpace == nil {
		dir := cfg.DataDir
		cfg.FreeSpace = func() (int64, error) { return mounts.FreeSpace(dir) }
	}
	k := &Keeper{cfg: cfg}
	if err := k.loadState(); err != nil {
		cfg.Logger.Error("reading the last garbage collection", "file", cfg.StateFile, "err", err)
	}
	return k, nil
}

// Hold is the low-disk watermark (queue.Config.Hold): while the data
// folder's file system has less than MinFreeDisk free, it says so, and
// queued builds wait instead of failing half-way. A free space that cannot
// be read holds nothing (and is logged once).
func (k *Keeper) Hold() string {
	if k.cfg.MinFreeDisk <= 0 {
		return ""
	}
	free, err := k.cfg.FreeSpace()
	k.mu.Lock()
	logIt := err != nil && !k.holdFailed
	k.holdFailed = err != nil
	k.mu.Unlock()
	if logIt {
		k.cfg.Logger.Error("reading the free disk space; builds are not held for it", "dir", k.cfg.DataDir, "err", err)
	}
	if err != nil || free >= k.cfg.MinFreeDisk {
		return ""
	}
	return fmt.Sprintf("waiting for disk space: %s free, %s needed", store.FormatSize(free), store.FormatSize(k.cfg.MinFreeDisk))
}

// Run applies the retention of builds to every image once (for builds that
// ended before a lower --keep-builds, say), then asks for the registry's
// garbage collection every GCInterval, counted from the last one (or from
// now, before the first), until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	k.retainAll(ctx)
	if k.cfg.Registry == nil || k.cfg.Queue == nil || k.cfg.GCInterval <= 0 {
		return
	}
	asked := time.Now()
	for {
		last := asked
		if run := k.LastGC(); run != nil && run.At.After(last) {
			last = run.At
		}
		wait := time.Until(last.Add(k.cfg.GCInterval))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		asked = time.Now()
		if err := k.CollectGarbage(); err != nil {
			k.cfg.Logger.Error("asking for the registry's garbage collection", "err", err)
		}
	}
}

// BuildFinished applies the retention of builds to the image of a build
// that just ended (queue.Config.Finished).
func (k *Keeper) BuildFinished(ctx context.Context, b *store.Build) {
	defer k.reportChanged()
	if err := k.retain(ctx, b.Image); err != nil && store.ErrorCode(err) != store.ENOTFOUND {
		k.cfg.Logger.Error("deleting the logs and tags of old builds", "image", b.Image, "err", err)
	}
}

// ImagesDeleted frees what deleted images held: their tags and manifests
// in the embedded registry (but those another image's URL still points at),
// and, at the layer cache's next clean-up, their images there. Call it once
// the store has deleted them. Failures are logged: the image is gone either
// way, and the next collection cannot free what is still tagged.
func (k *Keeper) ImagesDeleted(ctx context.Context, names ...string) {
	defer k.reportChanged()
	var repos []string
	for _, name := range names {
		repo := k.repository(name)
		repos = append(repos, repo)
		if err := k.deleteRepository(ctx, repo); err != nil {
			k.cfg.Logger.Error("deleting a deleted image's tags from the registry", "image", name, "err", err)
		}
	}
	if k.cfg.Queue != nil {
		k.cfg.Queue.ForgetImages(repos...)
	}
}

// repository is the repository an image's builds are pushed to.
func (k *Keeper) repository(image string) string {
	return k.cfg.RegistryPrefix + "/" + image
}
