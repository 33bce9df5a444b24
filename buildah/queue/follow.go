package queue

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// This file follows one running worker: its output into the build's log
// (capped in size), its events into the build's state, and its end into the
// build's outcome.

// follow copies a worker's output into the build's log and turns its events
// into the build's state, until the worker has exited. It stops the worker
// when the build is cancelled, runs past its deadline or writes more than
// MaxLogSize, and lets go of it when the server stops under a Reattacher.
// A build followed again after a restart has its output from the start:
// what the log held of it before (from) is left out.
func (q *Queue) follow(ctx context.Context, a *activeBuild, b *store.Build, job Job, log io.Writer, from logged) outcome {
	// The worker's output goes through a writer of its own, so that a last
	// line it left without a newline ends before the queue's closing line.
	out := q.openLog(b.ID)
	capped := newLogCap(out, max(q.cfg.MaxLogSize-from.size, 0))
	var sink io.Writer = capped
	if from.lines > 0 {
		sink = buildlog.SkipLines(capped, from.lines)
	}
	copied := make(chan struct{})
	var detached atomic.Bool
	go func() {
		defer close(copied)
		io.Copy(sink, job.Output())
		closeOutput(out, detached.Load())
	}()
	exited := make(chan error, 1)
	go func() { exited <- job.Wait() }()
	deadline := time.NewTimer(time.Until(a.started.Add(q.cfg.Deadline)))
	defer deadline.Stop()

	var done *workerspec.Event
	var pkgs packageBatches
	var pushStarted time.Time
	var waitErr error
	limit := "" // why a limit stopped the worker, when one did
	events, stop, full := job.Events(), a.stop, capped.full
	for events != nil || exited != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch ev.Phase {
			case workerspec.PhaseStep:
				q.recordStep(ctx, a, ev)
			case workerspec.PhaseBase:
				q.recordBase(ctx, b.ID, ev.BaseDigest)
			case workerspec.PhasePackages:
				pkgs.add(ev.Packages)
			case workerspec.PhasePushing:
				pushStarted = time.Now()
				q.recordPushing(ctx, b.ID)
			case workerspec.PhaseDone:
				done = &ev
				if !pushStarted.IsZero() {
					q.cfg.Observer.PushFinished(time.Since(pushStarted))
				}
			}
		case waitErr = <-exited:
			exited = nil
		case <-stop:
			stop = nil
			if d, ok := job.(Detacher); ok && a.leave {
				detached.Store(true)
				d.Detach()
				continue
			}
			job.Cancel()
		case <-deadline.C:
			limit = cmp.Or(limit, fmt.Sprintf("deadline of %s passed", q.cfg.Deadline))
			job.Cancel()
		case <-full:
			full = nil
			limit = cmp.Or(limit, fmt.Sprintf("the build log passed %s, the limit set by --max-log-size", formatSize(q.cfg.MaxLogSize)))
			job.Cancel()
		}
	}
	<-copied
	if detached.Load() {
		return outcome{detached: true}
	}
	o := q.judge(a, done, limit, waitErr, log)
	if o.status == store.BuildSucceeded && done.PackagesListed {
		o.packages = pkgs.list(log)
	}
	return o
}

// closeOutput closes the writer of a worker's output. When the queue let
// go of the worker, a line it had not ended is dropped, not cut: the server
// that follows the build again writes it whole.
func closeOutput(out io.WriteCloser, detached bool) {
	if a, ok := out.(interface{ Abandon() error }); ok && detached {
		a.Abandon()
		return
	}
	out.Close()
}

// packageBatches gathers the packages a worker reports, a batch an event,
// up to store.MaxPackages and one more (a list that long is refused).
type packageBatches struct {
	pkgs []store.Package
}

func (p *packageBatches) add(batch []store.Package) {
	n := min(len(batch), store.MaxPackages+1-len(p.pkgs))
	p.pkgs = append(p.pkgs, batch[:max(n, 0)]...)
}

// list is the package list a build keeps (store.CleanPackages), never nil;
// a list with packages left out says so in the build's log.
func (p *packageBatches) list(log io.Writer) []store.Package {
	kept, dropped := store.CleanPackages(p.pkgs)
	if dropped > 0 {
		fmt.Fprintf(log, "imagehub: %d packages of the image's list were left out (not valid, twice, or past %d)\n", dropped, store.MaxPackages)
	}
	return kept
}

// logCap passes a worker's output on to the build's log until size bytes
// have passed; then it closes full, so that the queue stops the worker, and
// drops the rest, so that the worker never blocks on a full pipe.
type logCap struct {
	w       io.Writer
	left    int64 // bytes that may still pass
	full    chan struct{}
	tripped bool
}

func newLogCap(w io.Writer, size int64) *logCap {
	return &logCap{w: w, left: size, full: make(chan struct{})}
}

func (c *logCap) Write(p []byte) (int, error) {
	if c.tripped {
		return len(p), nil
	}
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		return c.w.Write(p)
	}
	c.tripped = true
	close(c.full)
	c.w.Write(p[:c.left])
	c.left = 0
	return len(p), nil
}

// formatSize writes a size the way it is usually set: in MiB or KiB when it
// is a whole number of them.
func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// recordPushing records that a build's worker began to push.
func (q *Queue) recordPushing(ctx context.Context, id int64) {
	if err := q.cfg.Store.SetBuildPhase(ctx, id, store.BuildPushing); err != nil {
		q.cfg.Logger.Error("recording build phase", "build", id, "err", err)
	}
}

// recordStep records that a build's worker began a step of its
// Containerfile, at the time the event arrived. A step the store refuses
// (out of order, out of range) is left out: it only moves the progress bar.
// A build followed again after a restart gets its steps again: the store
// refuses those it has, which is no news.
func (q *Queue) recordStep(ctx context.Context, a *activeBuild, ev workerspec.Event) {
	err := q.cfg.Store.RecordBuildStep(ctx, a.id, ev.Step, ev.Steps, time.Now())
	switch {
	case err == nil:
	case a.resumed && store.ErrorCode(err) == store.EINVALID:
		q.cfg.Logger.Debug("a step recorded before the restart", "build", a.id, "step", ev.Step, "err", err)
	default:
		q.cfg.Logger.Warn("recording build step", "build", a.id, "step", ev.Step, "steps", ev.Steps, "err", err)
	}
}

// recordBase records the digest of the base image a build's worker builds
// on; a worker that reports no valid digest leaves the build without one.
func (q *Queue) recordBase(ctx context.Context, id int64, digest string) {
	if err := q.cfg.Store.SetBuildBase(ctx, id, digest); err != nil {
		q.cfg.Logger.Error("recording the base image's digest", "build", id, "err", err)
	}
}

// judge decides how a build ended. A stop asked for by a person or by the
// server wins over whatever the worker said, then a limit that stopped it
// (the deadline, the log's size), then the worker's own report; a worker
// that exited without one failed.
func (q *Queue) judge(a *activeBuild, done *workerspec.Event, limit string, waitErr error, log io.Writer) outcome {
	if a.stopped() || limit != "" {
		if waitErr != nil {
			fmt.Fprintf(log, "imagehub: worker: %s\n", workerspec.Reason(waitErr))
		}
		if a.stopped() {
			return a.outcome()
		}
		return failed("%s", limit)
	}
	switch {
	case done != nil && done.Error == "" && !store.ValidDigest(done.Digest):
		return failed("the worker reported success without the digest of what it pushed (%q)", done.Digest)
	case done != nil && done.Error == "":
		return outcome{status: store.BuildSucceeded, digest: done.Digest, upToDate: done.UpToDate}
	case done != nil:
		return failed("%s", done.Error)
	case waitErr != nil:
		return failed("worker exited: %s", workerspec.Reason(waitErr))
	}
	return failed("worker exited without reporting a result")
}
