package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// recordingObserver passes on what the queue tells it.
type recordingObserver struct {
	finished chan finishedBuild
	pushes   chan time.Duration
}

type finishedBuild struct {
	status store.BuildStatus
	ran    time.Duration
}

func (o *recordingObserver) BuildFinished(st store.BuildStatus, ran time.Duration) {
	o.finished <- finishedBuild{st, ran}
}
func (o *recordingObserver) PushFinished(took time.Duration) { o.pushes <- took }

func (o *recordingObserver) nextFinished(t *testing.T) finishedBuild {
	t.Helper()
	select {
	case f := <-o.finished:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("the observer was not told of a finished build")
		return finishedBuild{}
	}
}

// TestQueueObserver: the observer hears of every final status, with how
// long the build ran here (zero for one cancelled while queued), and of each
// push the worker reported the end of; Running counts the builds under way.
func TestQueueObserver(t *testing.T) {
	obs := &recordingObserver{finished: make(chan finishedBuild, 10), pushes: make(chan time.Duration, 10)}
	e := newQueueEnv(t, func(c *Config) { c.Observer = obs })
	ctx := context.Background()

	gone := e.queueBuild(t, "gone", okRecipe)
	if err := e.q.Cancel(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if f := obs.nextFinished(t); f != (finishedBuild{store.BuildCancelled, 0}) {
		t.Errorf("a build cancelled while queued: %+v, want cancelled after 0s", f)
	}

	ok := e.queueBuild(t, "ok", okRecipe)
	e.run(t)
	j := e.nextJob(t)
	if n := e.q.Running(); n != 1 {
		t.Errorf("Running() = %d during a build, want 1", n)
	}
	const pushTime = 20 * time.Millisecond
	j.emit(workerspec.Event{Phase: workerspec.PhasePushing})
	e.waitStatus(t, ok.ID, store.BuildPushing) // the queue has seen the push begin
	time.Sleep(pushTime)
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Digest: feedDigest})
	j.exit(nil)
	if f := obs.nextFinished(t); f.status != store.BuildSucceeded || f.ran < pushTime {
		t.Errorf("a build that pushed for %s: %+v, want succeeded after at least that", pushTime, f)
	}
	select {
	case took := <-obs.pushes:
		if took < pushTime {
			t.Errorf("push took %s, want at least %s", took, pushTime)
		}
	default:
		t.Error("the observer was not told of the push")
	}

	e.queueBuild(t, "bad", okRecipe)
	j = e.nextJob(t)
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Error: "no such package"})
	j.exit(errors.New("exit status 1"))
	if f := obs.nextFinished(t); f.status != store.BuildFailed || f.ran <= 0 {
		t.Errorf("a build that failed before pushing: %+v, want failed after some time", f)
	}
	if len(obs.pushes) != 0 {
		t.Errorf("a build that never pushed told of %d pushes", len(obs.pushes))
	}
}
