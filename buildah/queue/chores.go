package queue

import (
	"context"
	"slices"
	"time"

	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// Queued builds may be held: while Config.Hold says so (the disk is nearly
// full, say), and while a chore runs or waits to run. A chore is work on
// what builds share (the layer cache, the registry) that must not overlap a
// build: the queue runs it at a moment when no build runs, and starts no
// build until it is done. Waiting says what held builds wait for.

// CacheKeepRecent is how recently an image of the layer cache must have been
// used to stay whatever --cache-size says: the images of the builds of the
// last hour.
const CacheKeepRecent = time.Hour

// cacheChore names the clean-up of the layer cache in Waiting.
const cacheChore = "the layer cache's clean-up"

// chore is one piece of work that must not overlap a build.
type chore struct {
	name string
	// drain holds queued builds from the moment it is asked for, so that
	// it runs once the running builds end; else it waits for a moment
	// when no build runs.
	drain bool
	run   func(context.Context) error
}

// CacheCleaner is a Runner whose workers can clean up the layer cache they
// share and measure it (LocalRunner does, with build-worker processes).
type CacheCleaner interface {
	CleanCache(ctx context.Context, st workerspec.Storage, c workerspec.CacheCleanup) (workerspec.CacheResult, error)
	CacheUsage(ctx context.Context, st workerspec.Storage) (workerspec.CacheResult, error)
}

// Do asks for a chore: run is called from the queue's loop when no build
// runs, and no build starts until it returns; meanwhile Waiting says
// "waiting for <name>". With drain, queued builds are held from now on until
// it ran (the running ones finish first); without, it waits for the next
// moment no build runs. A chore of the same name that has not started yet is
// not asked for twice.
func (q *Queue) Do(name string, drain bool, run func(context.Context) error) {
	q.mu.Lock()
	if !slices.ContainsFunc(q.chores, func(c chore) bool { return c.name == name }) {
		q.chores = append(q.chores, chore{name: name, drain: drain, run: run})
	}
	q.mu.Unlock()
	q.Notify()
}

// ForgetImages asks for the images of the given repositories
// ("host/path/name") to be removed from the layer cache, at the next clean-up
// of the cache: those of images deleted from imagehub.
func (q *Queue) ForgetImages(repos ...string) {
	if len(repos) == 0 {
		return
	}
	q.mu.Lock()
	q.forget = append(q.forget, repos...)
	q.mu.Unlock()
	q.Do(cacheChore, false, q.cleanCache)
}

// Waiting says why queued builds do not start now, or "" when nothing holds
// them but the concurrency limit.
func (q *Queue) Waiting() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting
}

// CacheUsage measures the layer cache through the runner's workers.
func (q *Queue) CacheUsage(ctx context.Context) (workerspec.CacheResult, error) {
	cleaner, ok := q.cfg.Runner.(CacheCleaner)
	if !ok {
		return workerspec.CacheResult{}, store.Errorf(store.ECONFLICT, "This builder cannot measure its layer cache.")
	}
	return cleaner.CacheUsage(ctx, q.cfg.Storage)
}

// runChores runs the chores asked for, one after the other, when no build
// runs. It returns why queued builds must wait, or "".
func (q *Queue) runChores(ctx context.Context) string {
	for ctx.Err() == nil {
		c, wait := q.nextChore()
		if c == nil {
			return wait
		}
		if err := c.run(ctx); err != nil && ctx.Err() == nil {
			q.cfg.Logger.Error("running "+c.name, "err", err)
		}
	}
	return ""
}

// nextChore takes the next chore to run now, or, when a build runs, says
// what queued builds wait for: a chore that drains, or nothing.
func (q *Queue) nextChore() (*chore, string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.chores) == 0 {
		return nil, ""
	}
	if len(q.active) > 0 {
		for _, c := range q.chores {
			if c.drain {
				return nil, "waiting for " + c.name + ", which starts when the running builds end"
			}
		}
		return nil, ""
	}
	c := q.chores[0]
	q.chores = q.chores[1:]
	q.waiting = "waiting for " + c.name
	return &c, ""
}

// hold says why queued builds must wait now, or "": a chore (see
// runChores), or Config.Hold. It records the answer for Waiting, and tells
// the server's log when Config.Hold starts to hold builds and when it stops.
func (q *Queue) hold(ctx context.Context) string {
	reason := q.runChores(ctx)
	if reason == "" && q.cfg.Hold != nil {
		held := q.cfg.Hold()
		switch {
		case held != "" && q.held == "":
			q.cfg.Logger.Warn("holding queued builds", "reason", held)
		case held == "" && q.held != "":
			q.cfg.Logger.Info("queued builds may start again")
		}
		q.held, reason = held, held
	}
	q.mu.Lock()
	q.waiting = reason
	q.mu.Unlock()
	return reason
}

// afterBuild runs what follows each build's end: Config.Finished, and the
// clean-up of the layer cache when it is bounded.
func (q *Queue) afterBuild(ctx context.Context, id int64) {
	if q.cfg.Finished != nil {
		if b, err := q.cfg.Store.FindBuild(ctx, id); err == nil {
			q.cfg.Finished(ctx, b)
		} else {
			q.cfg.Logger.Error("after a build", "build", id, "err", err)
		}
	}
	if q.cfg.CacheSize > 0 {
		q.Do(cacheChore, false, q.cleanCache)
	}
}

// cleanCache is the chore that cleans the layer cache up through the
// runner's workers: the images of forgotten repositories, then the least
// recently used ones past Config.CacheSize.
func (q *Queue) cleanCache(ctx context.Context) error {
	cleaner, ok := q.cfg.Runner.(CacheCleaner)
	if !ok {
		return nil
	}
	q.mu.Lock()
	repos := q.forget
	q.forget = nil
	q.mu.Unlock()
	res, err := cleaner.CleanCache(ctx, q.cfg.Storage, workerspec.CacheCleanup{
		Limit: q.cfg.CacheSize, KeepRecent: CacheKeepRecent, RemoveRepositories: repos,
	})
	if err != nil {
		q.mu.Lock()
		q.forget = append(q.forget, repos...) // the next clean-up tries again
		q.mu.Unlock()
		return err
	}
	if res.Removed > 0 {
		q.cfg.Logger.Info("cleaned the layer cache up", "removedImages", res.Removed,
			"freed", store.FormatSize(res.Freed), "size", store.FormatSize(res.Size))
	}
	return nil
}
