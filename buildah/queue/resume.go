package queue

import (
	"context"
	"fmt"
	"time"

	"imagehub/store"
)

// This file lets builds outlive a restart of the server when the runner's
// workers do (Reattacher): the server that stops lets go of them, and the
// next one's Recover follows them again through the same path as a build
// it started (a slot, cancel, the deadline, the log, the end).

// logged is what a build's log holds of its worker's output: lines and
// bytes, the queue's first line left out.
type logged struct{ lines, size int64 }

// leaveRunning stops following the build without stopping its worker, as
// the server stops; should the worker not let go, the build is interrupted.
func (a *activeBuild) leaveRunning() {
	a.once.Do(func() {
		a.stopStatus, a.leave = store.BuildInterrupted, true
		close(a.stop)
	})
}

// shutdown stops the running builds as the server stops: a Reattacher's are
// let go, to be followed again by the next run of the server; the others
// are interrupted.
func (q *Queue) shutdown() {
	_, leave := q.cfg.Runner.(Reattacher)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, a := range q.active {
		if leave {
			a.leaveRunning()
		} else {
			a.stopWith(store.BuildInterrupted)
		}
	}
}

// resume follows again a build that an earlier run of the server left
// running, when the runner can find its worker, and reports whether it did.
// Its deadline counts from when it started. The log's lines after the
// queue's first one are the worker's output: the resumed output leaves out
// that many lines (buildlog.SkipLines, lines being where the log cuts; a
// crash keeps whole lines, a line it cut counts as written).
func (q *Queue) resume(ctx context.Context, b *store.Build) (bool, error) {
	re, ok := q.cfg.Runner.(Reattacher)
	if !ok {
		return false, nil
	}
	lines, size, err := q.cfg.Logs.Lines(b.ID)
	if err != nil {
		return false, fmt.Errorf("reading its log: %w", err)
	}
	job, found, err := re.Reattach(ctx, b.ID, q.cfg.Logs.Dir(b.ID))
	if err != nil || !found {
		return false, err
	}
	started := time.Now()
	if b.StartedAt != nil {
		started = *b.StartedAt
	}
	a := newActiveBuild(b.ID, started)
	a.resumed = true
	q.mu.Lock()
	q.active[b.ID] = a
	q.wg.Add(1)
	q.mu.Unlock()
	q.cfg.Logger.Info("following a build again after a restart", "build", b.ID, "logged lines", lines)
	go q.runResumed(context.WithoutCancel(ctx), a, b, job, logged{lines: max(lines-1, 0), size: size})
	return true, nil
}

// runResumed follows a build's worker again to its end and records how the
// build ended.
func (q *Queue) runResumed(ctx context.Context, a *activeBuild, b *store.Build, job Job, from logged) {
	defer q.release(a)
	log := q.openLog(b.ID)
	q.finish(ctx, a, b, q.follow(ctx, a, b, job, log, from), log)
}
