package kube

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/queue"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// testThroughQueue runs builds through the queue as the server does, with
// the Kubernetes runner: the queue, the store and the log hub are the real
// ones and know nothing of Kubernetes. A build succeeds with its digest and
// its log in the build's log file; a cancel ends another within 5 s.
func testThroughQueue(t *testing.T, r *Runner) {
	st, err := store.Open(filepath.Join(t.TempDir(), "imagehub.db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs := buildlog.NewHub(filepath.Join(t.TempDir(), "builds"))
	q := queue.New(queue.Config{Store: st, Runner: r, Logs: logs, TmpRoot: t.TempDir(), Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx) }()
	defer func() { cancel(); <-done }()

	queueBuild := func(name string) *store.Build {
		rec := store.Recipe{BaseImage: "busybox", Pip: "numpy>=1.2"}
		img := &store.Image{DisplayName: name, Type: store.TypeCPU, Global: true, Recipe: &rec}
		if err := st.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		b, err := st.CreateBuild(ctx, img.Name, rec, "registry.test/"+img.Name+":abc")
		if err != nil {
			t.Fatal(err)
		}
		q.Notify()
		return b
	}
	logText := func(id int64) string {
		rc, err := logs.Text(id)
		if err != nil {
			return ""
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	waitFor := func(id int64, what string, ok func(*store.Build) bool) *store.Build {
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, err := st.FindBuild(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if ok(b) {
				return b
			}
			if time.Now().After(deadline) {
				t.Fatalf("build %d is %s (%s), not %s; log:\n%s", id, b.Status, b.Error, what, logText(id))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	b := queueBuild("numpy")
	got := waitFor(b.ID, "succeeded", func(b *store.Build) bool { return !b.Status.Active() })
	log := logText(b.ID)
	if got.Status != store.BuildSucceeded || got.Digest != "sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("build: %s %q %s; log:\n%s", got.Status, got.Digest, got.Error, log)
	}
	if !strings.Contains(log, "STEP 2/2: RUN true\npushing registry.test/numpy:abc\n") || strings.Contains(log, workerspec.LogEventMarker) {
		t.Errorf("log:\n%s", log)
	}

	slow := queueBuild("slow")
	waitFor(slow.ID, "running its RUN step", func(*store.Build) bool { return strings.Contains(logText(slow.ID), "RUN sleep") })
	start := time.Now()
	if err := q.Cancel(ctx, slow.ID); err != nil {
		t.Fatal(err)
	}
	got = waitFor(slow.ID, "cancelled", func(b *store.Build) bool { return !b.Status.Active() })
	took := time.Since(start)
	t.Logf("cancelled through the queue in %s", took.Round(time.Millisecond))
	if got.Status != store.BuildCancelled || took > 5*time.Second {
		t.Errorf("cancel: %s after %s", got.Status, took)
	}
}
