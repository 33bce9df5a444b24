package queue

import (
	"context"

	"io"

	"imagehub/buildah/workerspec"
)

// Runner is where builds run. It starts a worker for a build and, after the
// server restarts, finds what is left of the workers it started. The queue
// talks only to this interface, so that it does not matter whether a worker
// is a child process (LocalRunner) or, later, a Kubernetes Job.
type Runner interface {
	// Start starts a worker for spec. dir is the build's own folder (its log
	// lives there), where the runner may keep what it needs to find the
	// worker again. ctx bounds the start only: a started worker runs until it
	// exits or is cancelled.
	Start(ctx context.Context, spec workerspec.Spec, dir string) (Job, error)
	// Reap stops whatever is left of a build's worker from before a restart
	// of the server and removes the build's working containers.
	Reap(ctx context.Context, buildID int64, dir string) error
}

// Sweeper is a Runner that can find the workers it started that belong to
// no running build (a Job left behind when the database was restored, or
// by a crash before its build was recorded as running) and stop them.
// Recover calls it after it has reaped the builds it knows.
type Sweeper interface {
	Sweep(ctx context.Context, running func(buildID int64) bool) error
}

// Reattacher is a Runner whose workers outlive the server (a Kubernetes Job
// does; a child process dies with it). Recover follows their builds again
// instead of reaping them, through the same path as a build it started, and
// a server that stops lets go of them (Detacher) instead of stopping them:
// a restart loses nothing.
type Reattacher interface {
	// Reattach finds the worker of a build started by an earlier run of the
	// server; found is false when it is gone. The Job's Output and Events
	// start again from the worker's beginning, as the first Job gave them:
	// the queue leaves out the lines its log holds already, and the events
	// it has seen come again (recording them twice changes nothing).
	Reattach(ctx context.Context, buildID int64, dir string) (job Job, found bool, err error)
}

// Detacher is a Job of a Reattacher: Detach stops following the worker
// without stopping it. Output and Events end, and Wait returns, soon after.
type Detacher interface {
	Detach()
}

// Job is one started worker.
type Job interface {
	// Output is the worker's log, its standard output and error combined. It
	// ends with io.EOF once the worker has exited.
	Output() io.Reader
	// Events delivers the worker's structured events. It is closed once the
	// worker has exited, and must be read until then.
	Events() <-chan workerspec.Event
	// Cancel stops the worker and everything it started, at once, without
	// waiting: Wait does that.
	Cancel()
	// Wait waits for the worker to exit and removes what it left behind:
	// stray processes and, unless it exited successfully, its working
	// containers. It returns nil when the worker exited with status 0.
	Wait() error
}
