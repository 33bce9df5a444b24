package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
)

// Admin changes what the embedded registry keeps, in this process and
// straight on its storage folder: it deletes tags and manifests and collects
// the garbage that leaves. The registry's HTTP API never deletes (see
// accessControl); only imagehub itself does, through an Admin.
//
// An Admin works on the folder of a registry that may be serving at the
// same time. Deleting a tag or a manifest is safe then; CollectGarbage is not
// while anything pushes (see there). Its methods run one at a time.
type Admin struct {
	dir    string
	driver storagedriver.StorageDriver
	ns     distribution.Namespace
	mu     sync.Mutex
}

// OpenAdmin opens the registry storage in dir (StartWithAccounts' folder)
// for deleting and collecting garbage.
func OpenAdmin(ctx context.Context, dir string) (*Admin, error) {
	if err := checkRegistryFiles(dir, ""); err != nil {
		return nil, err
	}
	quietenRegistryLogs(logrus.StandardLogger()) // the sweep logs each deletion
	driver := filesystem.New(filesystem.DriverParameters{RootDirectory: dir, MaxThreads: 100})
	ns, err := storage.NewRegistry(ctx, driver, storage.EnableDelete)
	if err != nil {
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	return &Admin{dir: dir, driver: driver, ns: ns}, nil
}

// Dir is the registry's storage folder.
func (a *Admin) Dir() string { return a.dir }

// Contents is what one repository holds: each tag with the digest of the
// manifest it names, and the digests of all its manifests, tagged or not.
type Contents struct {
	Tags      map[string]string
	Manifests []string
}

// Contents lists what a repository ("imagehub/name") holds; a repository
// that does not exist holds nothing.
func (a *Admin) Contents(ctx context.Context, repo string) (Contents, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.repository(ctx, repo)
	if err != nil {
		return Contents{}, err
	}
	return contents(ctx, r)
}

func contents(ctx context.Context, r distribution.Repository) (Contents, error) {
	c := Contents{Tags: map[string]string{}}
	tags, err := r.Tags(ctx).All(ctx)
	if err != nil && !isNotFound(err) {
		return Contents{}, err
	}
	for _, tag := range tags {
		desc, err := r.Tags(ctx).Get(ctx, tag)
		if isNotFound(err) {
			continue // removed meanwhile
		} else if err != nil {
			return Contents{}, err
		}
		c.Tags[tag] = desc.Digest.String()
	}
	ms, err := r.Manifests(ctx)
	if err != nil {
		return Contents{}, err
	}
	err = ms.(distribution.ManifestEnumerator).Enumerate(ctx, func(d digest.Digest) error {
		c.Manifests = append(c.Manifests, d.String())
		return nil
	})
	if err != nil && !isNotFound(err) {
		return Contents{}, err
	}
	slices.Sort(c.Manifests)
	return c, nil
}

// Delete removes tags and manifests (by digest) from a repository; ones it
// does not hold are skipped. A repository left with no tag and no manifest
// is removed altogether. The blobs that only they used stay on disk until
// CollectGarbage.
func (a *Admin) Delete(ctx context.Context, repo string, tags, manifests []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.repository(ctx, repo)
	if err != nil {
		return err
	}
	for _, tag := range tags {
		if err := r.Tags(ctx).Untag(ctx, tag); err != nil && !isNotFound(err) {
			return fmt.Errorf("deleting tag %s:%s: %w", repo, tag, err)
		}
	}
	ms, err := r.Manifests(ctx)
	if err != nil {
		return err
	}
	for _, m := range manifests {
		d, err := digest.Parse(m)
		if err != nil {
			return fmt.Errorf("manifest %q: %w", m, err)
		}
		if err := ms.Delete(ctx, d); err != nil && !isNotFound(err) {
			return fmt.Errorf("deleting manifest %s@%s: %w", repo, m, err)
		}
	}
	left, err := contents(ctx, r)
	if err != nil {
		return err
	}
	if len(left.Tags) == 0 && len(left.Manifests) == 0 {
		if err := storage.NewVacuum(ctx, a.driver).RemoveRepository(repo); err != nil {
			return fmt.Errorf("removing repository %s: %w", repo, err)
		}
	}
	return nil
}

// GCResult is what a garbage collection deleted, or would delete in a dry
// run: blobs (layers, image configs and manifests) that no manifest of any
// repository uses any more, and the bytes they held.
type GCResult struct {
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

// CollectGarbage runs distribution's mark and sweep (storage.MarkAndSweep)
// over the whole registry: every manifest of every repository, tagged or
// not, is kept with what it references, and every other blob is deleted.
// With dryRun nothing is deleted and the result says what would be.
//
// It is unsafe while anything pushes to the registry: the blobs of a push
// whose manifest has not arrived yet are garbage to it. The caller makes
// sure no build pushes (imagehub runs it from the queue, with no build
// running); pushes from outside imagehub (`imagehub base-images`, anybody
// with the push account) must wait too. A dry run only reads.
func (a *Admin) CollectGarbage(ctx context.Context, dryRun bool) (GCResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.driver.Stat(ctx, repositoriesRoot); isNotFound(err) {
		return GCResult{}, nil // nothing was ever pushed (the mark would fail)
	}
	counter := &sweepCounter{StorageDriver: a.driver, dryRun: dryRun}
	// The sweep deletes through counter, which measures what goes and, in a
	// dry run, deletes nothing; the mark reads through the registry.
	err := storage.MarkAndSweep(ctx, counter, a.ns, storage.GCOpts{Quiet: true})
	return counter.res, err
}

// repositoriesRoot is where the filesystem driver keeps repositories.
const repositoriesRoot = "/docker/registry/v2/repositories"

// blobsRoot is where the filesystem driver keeps blobs; a deletion below it
// is a blob's.
const blobsRoot = "/docker/registry/v2/blobs/"

// sweepCounter is a storage driver that counts the blobs deleted through it
// and their bytes, and passes deletions on unless dryRun.
type sweepCounter struct {
	storagedriver.StorageDriver
	dryRun bool
	res    GCResult
}

// Delete counts what path holds, then deletes it unless in a dry run.
func (s *sweepCounter) Delete(ctx context.Context, path string) error {
	if strings.HasPrefix(path, blobsRoot) {
		s.res.Blobs++
		s.res.Bytes += s.size(ctx, path)
	}
	if s.dryRun {
		return nil
	}
	return s.StorageDriver.Delete(ctx, path)
}

// size is the bytes of the files at or below path.
func (s *sweepCounter) size(ctx context.Context, path string) int64 {
	fi, err := s.Stat(ctx, path)
	if err != nil {
		return 0
	}
	if !fi.IsDir() {
		return fi.Size()
	}
	var n int64
	_ = s.Walk(ctx, path, func(fi storagedriver.FileInfo) error {
		if !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// repository opens a repository by its path in the registry.
func (a *Admin) repository(ctx context.Context, repo string) (distribution.Repository, error) {
	named, err := reference.WithName(repo)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repo, err)
	}
	return a.ns.Repository(ctx, named)
}

// isNotFound reports whether err says that something is not there.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var (
		path storagedriver.PathNotFoundError
		repo distribution.ErrRepositoryUnknown
		tag  distribution.ErrTagUnknown
		rev  distribution.ErrManifestUnknownRevision
	)
	return errors.As(err, &path) || errors.As(err, &repo) || errors.As(err, &tag) || errors.As(err, &rev) ||
		errors.Is(err, distribution.ErrBlobUnknown)
}
