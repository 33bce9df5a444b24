package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/buildtest"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// fakeQueue stands in for the build queue: it runs a chore at once (the
// queue's own tests show when it really runs them) and records what the
// layer cache was asked to forget.
type fakeQueue struct {
	mu        sync.Mutex
	chores    []string
	forgotten []string
}

func (q *fakeQueue) Do(name string, _ bool, run func(context.Context) error) {
	q.mu.Lock()
	q.chores = append(q.chores, name)
	q.mu.Unlock()
	run(context.Background())
}

func (q *fakeQueue) ForgetImages(repos ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.forgotten = append(q.forgotten, repos...)
}

func (q *fakeQueue) CacheUsage(context.Context) (workerspec.CacheResult, error) {
	return workerspec.CacheResult{Size: 4096, Images: 3}, nil
}

// diskEnv is a Keeper over a real store, real logs and a real embedded
// registry with its accounts.
type diskEnv struct {
	k      *Keeper
	st     *store.Store
	logs   *buildlog.Hub
	queue  *fakeQueue
	reg    *registry.Server
	regDir string
	push   *remote.Auth
	pull   *remote.Auth
	prefix string
	data   string
}

func newDiskEnv(t *testing.T, tweak func(*Config)) *diskEnv {
	t.Helper()
	ctx := context.Background()
	e := &diskEnv{data: t.TempDir(), queue: &fakeQueue{}}
	st, err := store.Open(filepath.Join(e.data, "imagehub.db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st, e.logs = st, buildlog.NewHub(filepath.Join(e.data, "builds"))
	acc, err := registry.LoadOrCreateAccounts(filepath.Join(e.data, "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.regDir = filepath.Join(e.data, "registry")
	if e.reg, err = registry.StartWithAccounts(ctx, "127.0.0.1:0", e.regDir, acc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.reg.Close() })
	e.push = &remote.Auth{Username: acc.Push.Username, Password: acc.Push.Password}
	e.pull = &remote.Auth{Username: acc.Pull.Username, Password: acc.Pull.Password}
	admin, err := registry.OpenAdmin(ctx, e.regDir)
	if err != nil {
		t.Fatal(err)
	}
	e.prefix = e.reg.Addr() + "/imagehub"
	cfg := Config{Store: st, Logs: e.logs, Queue: e.queue, Registry: admin, RegistryPrefix: e.prefix, DataDir: e.data,
		KeepBuilds: DefaultKeepBuilds, StateFile: filepath.Join(e.data, "gc.json")}
	if tweak != nil {
		tweak(&cfg)
	}
	if e.k, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// build makes a finished build of image that pushed a test image to tag,
// with a line in its log, and returns it as the store has it.
func (e *diskEnv) build(t *testing.T, image, tag string) *store.Build {
	t.Helper()
	ctx := context.Background()
	r := store.Recipe{BaseImage: "docker.io/library/busybox:latest", Pip: tag}
	if _, err := e.st.FindImage(ctx, image); store.ErrorCode(err) == store.ENOTFOUND {
		if err := e.st.CreateImage(ctx, &store.Image{DisplayName: image, Type: store.TypeCPU, Global: true, Recipe: &r}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := e.st.CreateBuild(ctx, image, r, e.prefix+"/"+image+":"+tag)
	if err != nil {
		t.Fatal(err)
	}
	pushed := buildtest.PushImage(t, e.reg.Addr(), e.push, "imagehub/"+image, tag, image+":"+tag)
	w, err := e.logs.Writer(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "building %s\n", tag)
	w.Close()
	if err := e.st.StartBuild(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.FinishBuild(ctx, b.ID, store.BuildSucceeded, pushed.Manifest, ""); err != nil {
		t.Fatal(err)
	}
	if b, err = e.st.FindBuild(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	return b
}

// pullable reports whether a reference of the registry can be read with
// its pull account.
func (e *diskEnv) pullable(ref string) bool {
	_, err := remote.Inspect(context.Background(), ref, e.pull, true)
	return err == nil
}

// TestKeepBuilds keeps one build: the older builds' tags and logs go, but a
// tag another image's URL points at stays, and so does a tag that a kept
// build pushed again (an up-to-date rebuild of an old recipe).
func TestKeepBuilds(t *testing.T) {
	e := newDiskEnv(t, func(c *Config) { c.KeepBuilds = 1 })
	ctx := context.Background()
	old := e.build(t, "sci", "t1")
	pinned := e.build(t, "sci", "t2")
	again := e.build(t, "sci", "t3")
	if err := e.st.CreateImage(ctx, &store.Image{DisplayName: "pinned", Type: store.TypeCPU, Global: true,
		URL: store.PinnedReference(pinned.TargetImage, pinned.Digest)}); err != nil {
		t.Fatal(err)
	}
	e.k.BuildFinished(ctx, again)
	if e.pullable(old.TargetImage) {
		t.Errorf("%s, older than the kept build, still pulls", old.TargetImage)
	}
	for _, ref := range []string{remote.PullReference(store.PinnedReference(pinned.TargetImage, pinned.Digest)), again.TargetImage} {
		if !e.pullable(ref) {
			t.Errorf("%s no longer pulls", ref)
		}
	}
	for _, b := range []*store.Build{old, pinned} {
		got, _ := e.st.FindBuild(ctx, b.ID)
		if got.PrunedAt == nil {
			t.Errorf("build %d is not marked pruned", b.ID)
		}
		if _, err := os.Stat(e.logs.Dir(b.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("build %d's log folder is still there: %v", b.ID, err)
		}
	}
	if _, err := os.Stat(e.logs.Dir(again.ID)); err != nil {
		t.Errorf("the kept build's log: %v", err)
	}

	// A new build of the first recipe pushes its tag again: the tag now
	// belongs to a kept build, and stays when the build before goes.
	rebuilt := e.build(t, "sci", "t1")
	e.k.BuildFinished(ctx, rebuilt)
	if !e.pullable(rebuilt.TargetImage) {
		t.Errorf("the rebuilt %s no longer pulls", rebuilt.TargetImage)
	}
	if e.pullable(again.TargetImage) {
		t.Errorf("%s, no longer kept, still pulls", again.TargetImage)
	}
}

// TestDeletedImageAndGarbageCollection deletes one of two images: its tags
// leave the registry, the cache is asked to forget it, and the garbage
// collection frees its blobs (as the dry run said) while the other image
// still pulls. Its last result is kept across a restart. The disk report is
// measured once for viewers at the same time, and anew after the deletion
// and after the collection.
func TestDeletedImageAndGarbageCollection(t *testing.T) {
	e := newDiskEnv(t, nil)
	ctx := context.Background()
	gone := e.build(t, "gone", "t1")
	kept := e.build(t, "kept", "t1")
	before := buildtest.RegistryBlobs(t, e.regDir)
	first, err := e.k.Report(ctx)
	if err != nil || first.Reclaimable.Blobs != 0 {
		t.Fatalf("report before the deletion: %+v, %v", first, err)
	}
	if again, err := e.k.Report(ctx); err != nil || !again.MeasuredAt.Equal(first.MeasuredAt) {
		t.Errorf("a second report at once was measured again (at %v, first at %v), %v", again.MeasuredAt, first.MeasuredAt, err)
	}
	if err := e.st.DeleteImage(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	e.k.ImagesDeleted(ctx, "gone")
	if e.pullable(gone.TargetImage) {
		t.Errorf("the deleted image's %s still pulls", gone.TargetImage)
	}
	if want := []string{e.prefix + "/gone"}; !slices.Equal(e.queue.forgotten, want) {
		t.Errorf("the cache was asked to forget %v, want %v", e.queue.forgotten, want)
	}
	report, err := e.k.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !report.Embedded || report.Reclaimable.Blobs != 2 || report.Registry <= 0 || report.Logs <= 0 ||
		report.Cache != 4096 || report.CacheImages != 3 || report.Free <= 0 || report.LastGC != nil {
		t.Errorf("report before the collection: %+v", report)
	}
	if err := e.k.CollectGarbage(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.queue.chores, []string{gcChore}) {
		t.Errorf("chores %v, want the collection from the queue", e.queue.chores)
	}
	run := e.k.LastGC()
	if run == nil || run.Error != "" || run.Result != report.Reclaimable {
		t.Fatalf("last collection %+v, want what the dry run said, %+v", run, report.Reclaimable)
	}
	if collected, err := e.k.Report(ctx); err != nil || collected.Reclaimable.Blobs != 0 || collected.LastGC == nil {
		t.Errorf("report after the collection: %+v, %v", collected, err)
	}
	after := buildtest.RegistryBlobs(t, e.regDir)
	if len(after) != len(before)-2 {
		t.Errorf("%d blobs before and %d after the collection; want the deleted image's 2 gone", len(before), len(after))
	}
	if !e.pullable(kept.TargetImage) {
		t.Errorf("the other image's %s no longer pulls", kept.TargetImage)
	}

	again, err := New(e.k.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.LastGC(); got == nil || !got.At.Equal(run.At) || got.Result != run.Result {
		t.Errorf("after a restart the last collection is %+v, want %+v", got, run)
	}
}

// TestDeletedImageKeepsWhatAnotherImagePointsAt: an image whose URL names a
// tag of a deleted image's repository keeps that tag and its manifest.
func TestDeletedImageKeepsWhatAnotherImagePointsAt(t *testing.T) {
	e := newDiskEnv(t, nil)
	ctx := context.Background()
	named := e.build(t, "shared", "t1")
	other := e.build(t, "shared", "t2")
	if err := e.st.CreateImage(ctx, &store.Image{DisplayName: "user", Type: store.TypeCPU, Global: true, URL: named.TargetImage}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteImage(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	e.k.ImagesDeleted(ctx, "shared")
	if !e.pullable(named.TargetImage) {
		t.Errorf("%s, named by another image, no longer pulls", named.TargetImage)
	}
	if e.pullable(other.TargetImage) {
		t.Errorf("%s still pulls", other.TargetImage)
	}
}

func TestHoldWhileLowOnDisk(t *testing.T) {
	var free int64 = 3328599654 // 3.1 GiB
	e := newDiskEnv(t, func(c *Config) {
		c.MinFreeDisk = 5 << 30
		c.FreeSpace = func() (int64, error) { return free, nil }
	})
	if got, want := e.k.Hold(), "waiting for disk space: 3.1 GiB free, 5 GiB needed"; got != want {
		t.Errorf("Hold() = %q, want %q", got, want)
	}
	free = 5 << 30
	if got := e.k.Hold(); got != "" {
		t.Errorf("with enough space, Hold() = %q", got)
	}
	e.k.cfg.FreeSpace = func() (int64, error) { return 0, errors.New("statfs: no") }
	if got := e.k.Hold(); got != "" {
		t.Errorf("when the free space cannot be read, Hold() = %q; want nothing held", got)
	}
	e.k.cfg.MinFreeDisk = 0
	e.k.cfg.FreeSpace = func() (int64, error) { return 0, nil }
	if got := e.k.Hold(); got != "" {
		t.Errorf("without a watermark, Hold() = %q", got)
	}
}

func TestCollectGarbageNeedsTheEmbeddedRegistry(t *testing.T) {
	e := newDiskEnv(t, func(c *Config) { c.Registry = nil; c.RegistryPrefix = "registry.example.com/team" })
	if err := e.k.CollectGarbage(); store.ErrorCode(err) != store.ECONFLICT || !strings.Contains(store.ErrorMessage(err), "registry.example.com/team") {
		t.Errorf("collecting without the embedded registry: %v", err)
	}
	// The logs of old builds still go.
	e.k.cfg.KeepBuilds = 1
	ctx := context.Background()
	first, second := e.build(t, "ext", "t1"), e.build(t, "ext", "t2")
	e.k.BuildFinished(ctx, second)
	if b, _ := e.st.FindBuild(ctx, first.ID); b.PrunedAt == nil {
		t.Error("the old build was not pruned")
	}
	if !e.pullable(first.TargetImage) {
		t.Error("a tag was deleted from a registry imagehub does not own")
	}
}

// TestRunCollectsOnSchedule runs the keeper with a short interval and sees
// the collection asked for more than once.
func TestRunCollectsOnSchedule(t *testing.T) {
	e := newDiskEnv(t, func(c *Config) { c.GCInterval = 50 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.k.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.queue.mu.Lock()
		n := len(e.queue.chores)
		e.queue.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d collections in 5s with an interval of 50ms", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
