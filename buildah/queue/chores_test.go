package queue

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"imagehub/buildah/disk"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// cacheRunner is a fake runner whose workers also clean the layer cache up,
// recording what they were asked.
type cacheRunner struct {
	*fakeRunner
	mu       sync.Mutex
	cleanups []workerspec.CacheCleanup
}

func (r *cacheRunner) CleanCache(_ context.Context, _ workerspec.Storage, c workerspec.CacheCleanup) (workerspec.CacheResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, c)
	return workerspec.CacheResult{Removed: 1, Freed: 1 << 20}, nil
}

func (r *cacheRunner) CacheUsage(context.Context, workerspec.Storage) (workerspec.CacheResult, error) {
	return workerspec.CacheResult{Size: 1 << 30, Images: 2}, nil
}

func (r *cacheRunner) calls() []workerspec.CacheCleanup {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cleanups)
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestQueueHoldsBuildsWhileLowOnDisk drives the disk keeper's watermark with
// an injected free space: a queued build waits with a plain status and
// starts at the queue's next tick once there is room again.
func TestQueueHoldsBuildsWhileLowOnDisk(t *testing.T) {
	var free atomic.Int64
	free.Store(3328599654) // 3.1 GiB
	var keeper *disk.Keeper
	e := newQueueEnv(t, func(c *Config) {
		var err error
		keeper, err = disk.New(disk.Config{Store: c.Store, Logs: c.Logs, DataDir: t.TempDir(), RegistryPrefix: "registry.test",
			MinFreeDisk: 5 << 30, FreeSpace: func() (int64, error) { return free.Load(), nil }})
		if err != nil {
			t.Fatal(err)
		}
		c.Hold = keeper.Hold
		c.Poll = 20 * time.Millisecond
	})
	b := e.queueBuild(t, "held", okRecipe)
	e.run(t)
	const want = "waiting for disk space: 3.1 GiB free, 5 GiB needed"
	waitFor(t, "the hold", func() bool { return e.q.Waiting() == want })
	e.noJob(t)
	if got, _ := e.st.FindBuild(context.Background(), b.ID); got.Status != store.BuildQueued {
		t.Fatalf("a held build is %s", got.Status)
	}

	free.Store(6 << 30) // no Notify: the tick finds it
	e.nextJob(t).succeed()
	e.waitStatus(t, b.ID, store.BuildSucceeded)
	if got := e.q.Waiting(); got != "" {
		t.Errorf("after the disk had room again, Waiting() = %q", got)
	}
}

// TestQueueDrainingChore asks for a draining chore while a build runs: a
// build queued then waits, the chore runs once the first build ended, and
// then the waiting build starts.
func TestQueueDrainingChore(t *testing.T) {
	e := newQueueEnv(t, func(c *Config) { c.Concurrency = 2 })
	first := e.queueBuild(t, "first", okRecipe)
	e.run(t)
	j := e.nextJob(t)
	var ran atomic.Bool
	e.q.Do("the sweep", true, func(context.Context) error {
		e.runner.mu.Lock()
		defer e.runner.mu.Unlock()
		if e.runner.running != 0 {
			t.Error("the chore ran while a build ran")
		}
		ran.Store(true)
		return nil
	})
	e.q.Do("the sweep", true, func(context.Context) error { t.Error("a chore asked for twice ran twice"); return nil })
	second := e.queueBuild(t, "second", okRecipe)
	waitFor(t, "the hold", func() bool {
		return e.q.Waiting() == "waiting for the sweep, which starts when the running builds end"
	})
	e.noJob(t)
	if ran.Load() {
		t.Fatal("the chore ran while a build ran")
	}
	j.succeed()
	e.waitStatus(t, first.ID, store.BuildSucceeded)
	j2 := e.nextJob(t)
	if !ran.Load() {
		t.Error("the second build started before the chore ran")
	}
	j2.succeed()
	e.waitStatus(t, second.ID, store.BuildSucceeded)
}

// TestQueueCacheCleanUp bounds the layer cache: after each build, once no
// build runs, the runner cleans it up with the bound, and the repositories
// of deleted images are forgotten at the next clean-up. A chore that does
// not drain lets builds start meanwhile. Finished sees every build.
func TestQueueCacheCleanUp(t *testing.T) {
	runner := &cacheRunner{fakeRunner: newFakeRunner()}
	var finished []int64
	var mu sync.Mutex
	e := newQueueEnv(t, func(c *Config) {
		c.Runner, c.CacheSize, c.Concurrency = runner, 20<<30, 2
		c.Finished = func(_ context.Context, b *store.Build) {
			mu.Lock()
			defer mu.Unlock()
			finished = append(finished, b.ID)
		}
	})
	e.runner = runner.fakeRunner
	first := e.queueBuild(t, "first", okRecipe)
	e.run(t)
	j1 := e.nextJob(t)
	e.q.ForgetImages("registry.test/imagehub/gone")
	second := e.queueBuild(t, "second", okRecipe)
	j2 := e.nextJob(t) // not held by the clean-up waiting for its moment
	j1.succeed()
	e.waitStatus(t, first.ID, store.BuildSucceeded)
	if n := len(runner.calls()); n != 0 {
		t.Fatalf("the cache was cleaned up %d times while a build ran", n)
	}
	j2.succeed()
	e.waitStatus(t, second.ID, store.BuildSucceeded)
	waitFor(t, "the clean-up", func() bool { return len(runner.calls()) > 0 })
	want := workerspec.CacheCleanup{Limit: 20 << 30, KeepRecent: CacheKeepRecent, RemoveRepositories: []string{"registry.test/imagehub/gone"}}
	if got := runner.calls()[0]; got.Limit != want.Limit || got.KeepRecent != want.KeepRecent || !slices.Equal(got.RemoveRepositories, want.RemoveRepositories) {
		t.Errorf("clean-up %+v, want %+v", got, want)
	}
	if n := len(runner.calls()); n != 1 {
		t.Errorf("%d clean-ups after two builds that ended together, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(finished, []int64{first.ID, second.ID}) {
		t.Errorf("Finished saw %v, want %v", finished, []int64{first.ID, second.ID})
	}
	if res, err := e.q.CacheUsage(context.Background()); err != nil || res.Images != 2 {
		t.Errorf("cache usage %+v, %v", res, err)
	}
}
