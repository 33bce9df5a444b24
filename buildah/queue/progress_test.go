package queue

import (
	"context"
	"testing"
	"time"

	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// TestQueueRecordsProgress: the step events of a worker become the running
// build's progress; the first build of an image has no ETA, and with two
// earlier builds of the image (their last step 600 ms long) the third has
// its steps and an ETA of about that last step.
func TestQueueRecordsProgress(t *testing.T) {
	e := newQueueEnv(t, nil)
	e.run(t)
	ctx := context.Background()
	// waitProgress waits until build id is at step of 3.
	waitProgress := func(id int64, step int) *store.BuildProgress {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, err := e.st.FindBuild(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if p := b.Progress; p != nil && p.Step == step {
				if p.Steps != 3 {
					t.Fatalf("build %d: %+v, want 3 steps", id, *p)
				}
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("build %d has progress %+v, want step %d", id, b.Progress, step)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	step := func(j *fakeJob, n int) {
		j.emit(workerspec.Event{Phase: workerspec.PhaseStep, Step: n, Steps: 3})
	}
	var image string
	for i := range 3 {
		var b *store.Build
		if i == 0 {
			b = e.queueBuild(t, "sci", okRecipe)
			image = b.Image
		} else {
			var err error
			if b, err = e.st.CreateBuild(ctx, image, okRecipe, "registry.test/sci:abc"); err != nil {
				t.Fatal(err)
			}
			e.q.Notify()
		}
		j := e.nextJob(t)
		j.emit(workerspec.Event{Phase: workerspec.PhaseBuilding})
		step(j, 1)
		step(j, 2)
		p := waitProgress(b.ID, 2)
		switch {
		case i == 0 && p.ETASeconds != nil:
			t.Errorf("the image's first build has an ETA: %d s", *p.ETASeconds)
		case i == 2 && (p.ETASeconds == nil || *p.ETASeconds < 1 || *p.ETASeconds > 2):
			t.Errorf("the third build at step 2 of 3: ETA %v, want 1 or 2 s (the earlier last steps took 0.6 s)", p.ETASeconds)
		}
		if i == 2 {
			if err := e.q.Cancel(ctx, b.ID); err != nil {
				t.Fatal(err)
			}
			e.waitStatus(t, b.ID, store.BuildCancelled)
			break
		}
		step(j, 3)
		waitProgress(b.ID, 3)
		time.Sleep(600 * time.Millisecond)
		j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Digest: feedDigest})
		j.exit(nil)
		if got := e.waitStatus(t, b.ID, store.BuildSucceeded); got.Progress != nil {
			t.Errorf("a succeeded build has progress %+v", *got.Progress)
		}
	}
}
