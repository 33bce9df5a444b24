package queue

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// reattacher is a fakeRunner whose workers outlive the queue, as Jobs do:
// Reattach gives back a new job for the builds in found, which the test
// then plays from the worker's start.
type reattacher struct {
	*fakeRunner
	found map[int64]bool
}

func (r *reattacher) Reattach(ctx context.Context, id int64, dir string) (Job, bool, error) {
	if !r.found[id] {
		return nil, false, nil
	}
	j, err := r.Start(ctx, workerspec.Spec{BuildID: id}, dir)
	return j, true, err
}

var errFakeDetached = errors.New("detached")

// Detach lets the pretend worker go on without the queue.
func (j *fakeJob) Detach() { j.exit(errFakeDetached) }

// A server that stops lets go of a Reattacher's builds: they stay running,
// their workers are not stopped, their logs get no last line. The next
// server follows again the build whose worker is still there, from the
// worker's start: its log gets each line once and it ends as it would have;
// the build whose worker is gone is reaped and interrupted.
func TestQueueLeavesAndResumesAReattachableBuild(t *testing.T) {
	e := newQueueEnv(t, func(c *Config) { c.Concurrency = 2 })
	re := &reattacher{fakeRunner: e.runner, found: map[int64]bool{}}
	e.cfg.Runner = re
	e.q = New(e.cfg)
	kept := e.queueBuild(t, "kept", okRecipe)
	gone := e.queueBuild(t, "gone", okRecipe)
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() {
		e.q.Run(ctx)
		close(returned)
	}()
	jobs := map[int64]*fakeJob{}
	for range 2 {
		j := e.nextJob(t)
		jobs[j.spec.BuildID] = j
	}
	jobs[kept.ID].say("line 1\nline 2\nline 3 in the ma")
	jobs[kept.ID].emit(workerspec.Event{Phase: workerspec.PhaseStep, Step: 1, Steps: 2})
	for !strings.Contains(e.logText(t, kept.ID), "line 2\n") {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	header := fmt.Sprintf("imagehub: build %d of image %s started\n", kept.ID, kept.Image)
	for _, j := range jobs {
		if j.err != errFakeDetached {
			t.Errorf("build %d: the worker ended with %v, not let go", j.spec.BuildID, j.err)
		}
	}
	if b, err := e.st.FindBuild(context.Background(), kept.ID); err != nil || b.Status != store.BuildRunning {
		t.Errorf("build once the server stopped: %+v, %v", b, err)
	}
	if log := e.logText(t, kept.ID); log != header+"line 1\nline 2\n" {
		t.Errorf("log once the server stopped: %q", log)
	}

	re.found[kept.ID] = true
	restarted := buildlog.NewHub(filepath.Dir(e.logs.Dir(0)))
	e.cfg.Logs, e.logs = restarted, restarted
	e.q = New(e.cfg)
	if err := e.q.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	j := e.nextJob(t)
	e.run(t)
	j.say("line 1\nline 2\nline 3 in the making\n")
	j.emit(workerspec.Event{Phase: workerspec.PhaseStep, Step: 1, Steps: 2})
	j.emit(workerspec.Event{Phase: workerspec.PhaseStep, Step: 2, Steps: 2})
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Digest: feedDigest})
	j.exit(nil)
	got := e.waitStatus(t, kept.ID, store.BuildSucceeded)
	want := header + "line 1\nline 2\nline 3 in the making\n" + fmt.Sprintf("imagehub: build %d succeeded: pushed %s (%s)\n", kept.ID, got.TargetImage, feedDigest)
	if log := e.logText(t, kept.ID); got.Digest != feedDigest || log != want {
		t.Errorf("digest %q, log %q, want %q", got.Digest, log, want)
	}
	if lost := e.waitStatus(t, gone.ID, store.BuildInterrupted); lastLine(e.logText(t, gone.ID)) != interruptedLine {
		t.Errorf("build whose worker is gone: %s, log %q", lost.Status, e.logText(t, gone.ID))
	}
	if fmt.Sprint(e.runner.reaped) != fmt.Sprint([]int64{gone.ID}) {
		t.Errorf("reaped %v", e.runner.reaped)
	}
}
