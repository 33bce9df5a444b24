package kube

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/kube/kubetest"
	"imagehub/buildah/queue"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// queueEnv is what the server keeps on its disk, the store and the build
// logs, shared by the queue cases (builds are numbered in the store, and
// their Jobs' names must not meet).
type queueEnv struct {
	st      *store.Store
	logsDir string
}

func newQueueEnv(t *testing.T) *queueEnv {
	st, err := store.Open(filepath.Join(t.TempDir(), "imagehub.db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &queueEnv{st: st, logsDir: filepath.Join(t.TempDir(), "builds")}
}

// server is one run of the server's queue, as serve runs it: a log hub of
// its own on the shared folder, Recover, then Run until stop.
type server struct {
	q    *queue.Queue
	logs *buildlog.Hub
	stop func()
}

func (e *queueEnv) start(t *testing.T, r *Runner) *server {
	logs := buildlog.NewHub(e.logsDir)
	q := queue.New(queue.Config{Store: e.st, Runner: r, Logs: logs, TmpRoot: t.TempDir(), Poll: time.Hour, Concurrency: 4})
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx) }()
	s := &server{q: q, logs: logs}
	s.stop = func() { cancel(); <-done }
	t.Cleanup(s.stop)
	return s
}

func (e *queueEnv) queueBuild(t *testing.T, s *server, name string) *store.Build {
	ctx := context.Background()
	rec := store.Recipe{BaseImage: "busybox", Pip: "numpy>=1.2"}
	img := &store.Image{DisplayName: name, Type: store.TypeCPU, Global: true, Recipe: &rec}
	if err := e.st.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	b, err := e.st.CreateBuild(ctx, img.Name, rec, "registry.test/"+img.Name+":abc")
	if err != nil {
		t.Fatal(err)
	}
	s.q.Notify()
	return b
}

// logText reads a build's log as the server has written it so far.
func (e *queueEnv) logText(id int64) string {
	rc, err := buildlog.NewHub(e.logsDir).Text(id)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func (e *queueEnv) waitFor(t *testing.T, id int64, what string, ok func(*store.Build) bool) *store.Build {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := e.st.FindBuild(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(b) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("build %d is %s (%s), not %s; log:\n%s", id, b.Status, b.Error, what, e.logText(id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ended(b *store.Build) bool { return !b.Status.Active() }

// testThroughQueue runs builds through the queue as the server does, with
// the Kubernetes runner: the queue, the store and the log hub are the real
// ones and know nothing of Kubernetes. A build succeeds with its digest and
// its log in the build's log file; a cancel ends another within 5 s.
func testThroughQueue(t *testing.T, e *queueEnv, r *Runner) {
	s := e.start(t, r)
	defer s.stop()
	b := e.queueBuild(t, s, "numpy")
	got := e.waitFor(t, b.ID, "succeeded", ended)
	log := e.logText(b.ID)
	if got.Status != store.BuildSucceeded || got.Digest != "sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("build: %s %q %s; log:\n%s", got.Status, got.Digest, got.Error, log)
	}
	if !strings.Contains(log, "STEP 2/2: RUN true\npushing registry.test/numpy:abc\n") || strings.Contains(log, workerspec.LogEventMarker) {
		t.Errorf("log:\n%s", log)
	}

	slow := e.queueBuild(t, s, "slow")
	e.waitFor(t, slow.ID, "running its RUN step", func(*store.Build) bool { return strings.Contains(e.logText(slow.ID), "RUN sleep") })
	cancelWithin5s(t, e, s, slow.ID)
}

func cancelWithin5s(t *testing.T, e *queueEnv, s *server, id int64) {
	t.Helper()
	start := time.Now()
	if err := s.q.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	got := e.waitFor(t, id, "cancelled", ended)
	took := time.Since(start)
	t.Logf("cancelled through the queue in %s", took.Round(time.Millisecond))
	if got.Status != store.BuildCancelled || took > 5*time.Second {
		t.Errorf("cancel: %s after %s", got.Status, took)
	}
}

// testRestart stops the server's queue in the middle of four builds and
// starts another on the same store and log folder, as a restart of the
// server does. The Jobs go on meanwhile. The new queue follows the first
// build again: it ends with its digest and its whole package list, and its
// log holds every line once, in order, those written while no server ran
// included. The second build's Job was deleted while no server ran: it is
// interrupted. The third is followed again and cancelled. The fourth ended
// while no server ran: it is read to its end all the same.
func testRestart(t *testing.T, e *queueEnv, c *kubetest.Cluster, gates string, r *Runner) {
	ctx := context.Background()
	first := e.start(t, r)
	resume := e.queueBuild(t, first, "resume")
	gone := e.queueBuild(t, first, "slow-gone")
	later := e.queueBuild(t, first, "slow-cancelled")
	finished := e.queueBuild(t, first, "resume-ended")
	for _, id := range []int64{resume.ID, finished.ID} {
		e.waitFor(t, id, "at line 10", func(*store.Build) bool { return strings.Contains(e.logText(id), "line 10\n") })
	}
	for _, id := range []int64{gone.ID, later.ID} {
		e.waitFor(t, id, "running its RUN step", func(*store.Build) bool { return strings.Contains(e.logText(id), "RUN sleep") })
	}
	first.stop()

	// No server runs. The Jobs do; one is deleted, one goes on to line 20.
	for _, id := range []int64{resume.ID, gone.ID, later.ID, finished.ID} {
		if b, _ := e.st.FindBuild(ctx, id); b.Status != store.BuildRunning {
			t.Fatalf("build %d is %s once the server stopped", id, b.Status)
		}
		if _, err := c.Client.BatchV1().Jobs(testNamespace).Get(ctx, jobName(id), metav1.GetOptions{}); err != nil {
			t.Fatalf("the Job of build %d, once the server stopped: %v", id, err)
		}
	}
	fg := metav1.DeletePropagationForeground
	if err := c.Client.BatchV1().Jobs(testNamespace).Delete(ctx, jobName(gone.ID), metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, gone.ID)
	openGate(t, gates, resume.ID, 1)
	openGate(t, gates, finished.ID, 1)
	openGate(t, gates, finished.ID, 2)
	waitPodLog(t, c, resume.ID, "line 20\n")
	waitJobEnded(t, c, finished.ID)
	if log := e.logText(resume.ID); strings.Contains(log, "line 11\n") {
		t.Fatalf("the log has lines written while no server ran:\n%s", log)
	}

	second := e.start(t, &Runner{Client: r.Client, Namespace: r.Namespace, Poll: r.Poll})
	got := e.waitFor(t, gone.ID, "interrupted", ended)
	if got.Status != store.BuildInterrupted || !strings.HasSuffix(e.logText(gone.ID), "it was interrupted\n") {
		t.Errorf("build whose Job was deleted: %s; log:\n%s", got.Status, e.logText(gone.ID))
	}
	e.waitFor(t, resume.ID, "followed again to line 20", func(*store.Build) bool { return strings.Contains(e.logText(resume.ID), "line 20\n") })
	openGate(t, gates, resume.ID, 2)
	got = e.waitFor(t, resume.ID, "succeeded", ended)
	log := e.logText(resume.ID)
	if got.Status != store.BuildSucceeded || got.Digest != "sha256:"+strings.Repeat("ef", 32) || got.BaseDigest != "sha256:"+strings.Repeat("cd", 32) {
		t.Errorf("build: %s %q base %q %s", got.Status, got.Digest, got.BaseDigest, got.Error)
	}
	checkOnceInOrder(t, log, resume)
	if got := e.waitFor(t, finished.ID, "succeeded", ended); got.Status != store.BuildSucceeded {
		t.Errorf("build whose Job ended while no server ran: %s %s", got.Status, got.Error)
	}
	checkOnceInOrder(t, e.logText(finished.ID), finished)
	pkgs, err := e.st.ListPackages(ctx, resume.ID, store.PackageFilter{})
	if err != nil || pkgs.Total != 2 {
		t.Errorf("packages: %+v, %v (want pkg5 and pkg25)", pkgs, err)
	}

	cancelWithin5s(t, e, second, later.ID)
	waitGone(t, c, later.ID)
}

// checkOnceInOrder checks a resumed build's whole log: the queue's first
// line, the worker's lines 1 to 30 and its push, and the queue's last line,
// in this order, and no line twice.
func checkOnceInOrder(t *testing.T, log string, b *store.Build) {
	t.Helper()
	want := []string{"imagehub: build " + strconv.FormatInt(b.ID, 10) + " of image " + b.Image + " started"}
	for i := 1; i <= 30; i++ {
		want = append(want, "line "+strconv.Itoa(i))
	}
	want = append(want, "pushing "+b.TargetImage, "imagehub: build "+strconv.FormatInt(b.ID, 10)+" succeeded: pushed ")
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	seen := 0
	for _, l := range lines {
		for _, w := range want {
			if strings.HasPrefix(l, w) && (l == w || strings.HasSuffix(w, " ")) {
				if seen >= len(want) || want[seen] != w {
					t.Fatalf("line %q out of order or twice; log:\n%s", l, log)
				}
				seen++
			}
		}
	}
	count := map[string]int{}
	for _, l := range lines {
		if count[l]++; count[l] == 2 {
			t.Errorf("line %q twice", l)
		}
	}
	if seen != len(want) {
		t.Errorf("%d of %d expected lines; log:\n%s", seen, len(want), log)
	}
}

// waitJobEnded waits until a build's Job has ended, as no server sees it.
func waitJobEnded(t *testing.T, c *kubetest.Cluster, buildID int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		job, err := c.Client.BatchV1().Jobs(testNamespace).Get(context.Background(), jobName(buildID), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if done, _ := jobEnded(job); done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Job of build %d did not end", buildID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openGate(t *testing.T, gates string, buildID int64, n int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(gates, strconv.FormatInt(buildID, 10)+"-"+strconv.Itoa(n)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitPodLog waits until a build's pod has written text, read through the
// API as no server reads it.
func waitPodLog(t *testing.T, c *kubetest.Cluster, buildID int64, text string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pods, err := c.Client.CoreV1().Pods(testNamespace).List(ctx, metav1.ListOptions{LabelSelector: buildSelector(buildID)})
		if err == nil && len(pods.Items) == 1 {
			b, err := c.Client.CoreV1().Pods(testNamespace).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{Container: workerName}).DoRaw(ctx)
			if err == nil && strings.Contains(string(b), text) {
				return
			}
		} else if err != nil && !apierrors.IsNotFound(err) {
			t.Log(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod of build %d never wrote %q", buildID, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
