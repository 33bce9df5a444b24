package kube

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"imagehub/buildah/kube/kubetest"
	"imagehub/buildah/queue"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// These tests run builds' Jobs through a real API server, etcd, Job
// controller and garbage collector (kubetest), with the test kubelet running
// each pod's `imagehub build-worker --in-pod ...` as TestFakeWorkerHelper,
// which runs kubetest.FakeWorker: the pod's command, arguments and Secret
// file as Kubernetes hands them over, and a worker that speaks the worker's
// protocol (the log, its event lines) without building anything.

// testNamespace is the build namespace of deploy/kubernetes; the runner
// works there as the server's service account, with only what the deploy
// files' Role grants.
const (
	testNamespace  = "imagehub-builds"
	serverAccount  = "system:serviceaccount:imagehub:imagehub"
	deployFilesDir = "../../deploy/kubernetes"
)

// gateDir is where the test opens the gates of a "resume" worker
// (kubetest.FakeWorker).
var gateDir = flag.String("fake-worker-gates", "", "the fake worker's gates (a folder)")

// TestFakeWorkerHelper is the worker of the test pods; run without
// arguments after "--", as the test it is not, it does nothing.
func TestFakeWorkerHelper(t *testing.T) {
	if len(flag.Args()) == 0 {
		return
	}
	os.Exit(kubetest.FakeWorker(flag.Args(), *gateDir))
}

// result is what a test read of a Job.
type result struct {
	log    string
	events []workerspec.Event
	err    error
}

// finish reads a Job's output and events to their end and waits for it, as
// the queue does.
func finish(job queue.Job) result {
	var res result
	logDone := make(chan struct{})
	go func() {
		b, _ := io.ReadAll(job.Output())
		res.log = string(b)
		close(logDone)
	}()
	for ev := range job.Events() {
		res.events = append(res.events, ev)
	}
	res.err = job.Wait()
	<-logDone
	return res
}

func TestJobsOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kubernetes control plane")
	}
	c := kubetest.Start(t)
	ctx := context.Background()
	// The deploy files: the namespaces and the server's account and Role
	// for real, the server itself checked by the API server (dry run).
	c.Apply(t, filepath.Join(deployFilesDir, "namespaces.yaml"), false)
	c.Apply(t, filepath.Join(deployFilesDir, "rbac.yaml"), false)
	c.Apply(t, filepath.Join(deployFilesDir, "server.yaml"), true)
	gates := t.TempDir()
	kubetest.StartKubelet(t, c, testNamespace, map[string][]string{
		"imagehub": {os.Args[0], "-test.run=^TestFakeWorkerHelper$", "-fake-worker-gates=" + gates, "--"},
	})
	asServer := rest.CopyConfig(c.Config)
	asServer.Impersonate.UserName = serverAccount
	client, err := kubernetes.NewForConfig(asServer)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Client: client, Namespace: testNamespace, Image: "imagehub:test", Deadline: 5 * time.Minute, Poll: 100 * time.Millisecond}
	spec := func(id int64, target string) workerspec.Spec {
		return workerspec.Spec{BuildID: id, BaseImage: "busybox", Target: "registry.test/" + target,
			PushAuth: &remote.Auth{Username: "push", Password: "secret"}}
	}
	// startSlow starts a build whose worker runs until it is stopped, and
	// waits until the worker has said it builds.
	startSlow := func(t *testing.T, id int64) queue.Job {
		t.Helper()
		job, err := r.Start(ctx, spec(id, "slow"), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, job.Output())
		if ev := <-job.Events(); ev.Phase != workerspec.PhaseBuilding {
			t.Fatalf("first event %+v", ev)
		}
		return job
	}

	// The queue's builds are numbered from 1; the runner's own cases use
	// 101 and up, so that their Jobs' names do not meet.
	qe := newQueueEnv(t)
	t.Run("through the queue", func(t *testing.T) { testThroughQueue(t, qe, r) })
	t.Run("restart", func(t *testing.T) { testRestart(t, qe, c, gates, r) })

	t.Run("success", func(t *testing.T) {
		job, err := r.Start(ctx, spec(101, "ok"), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		res := finish(job)
		if res.err != nil {
			t.Fatalf("Wait: %v; log:\n%s", res.err, res.log)
		}
		phases := phasesOf(res.events)
		if phases != "building pushing done" || res.events[2].Digest == "" || res.events[2].Error != "" {
			t.Errorf("events %+v", res.events)
		}
		if !strings.Contains(res.log, "STEP 1/2: FROM busybox\nSTEP 2/2: RUN true\npushing registry.test/ok\n") ||
			strings.Contains(res.log, workerspec.LogEventMarker) || strings.Contains(res.log, "/var/lib/imagehub-build") {
			t.Errorf("log:\n%s", res.log)
		}
		if _, err := c.Client.CoreV1().Secrets(testNamespace).Get(ctx, jobName(101), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the Secret of a finished build is still there (%v)", err)
		}
	})

	t.Run("failure", func(t *testing.T) {
		job, err := r.Start(ctx, spec(102, "fail"), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		res := finish(job)
		if res.err == nil || !strings.Contains(res.err.Error(), "BackoffLimitExceeded") {
			t.Errorf("Wait: %v", res.err)
		}
		if phasesOf(res.events) != "building done" || !strings.Contains(res.events[1].Error, "nosuchpackage") {
			t.Errorf("events %+v; log:\n%s", res.events, res.log)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		job := startSlow(t, 103)
		start := time.Now()
		job.Cancel()
		for range job.Events() {
		}
		if err := job.Wait(); !errors.Is(err, errCancelled) {
			t.Errorf("Wait: %v", err)
		}
		took := time.Since(start)
		t.Logf("cancelled in %s", took.Round(time.Millisecond))
		if took > 5*time.Second {
			t.Errorf("cancelling took %s", took)
		}
		waitGone(t, c, 103)
	})

	t.Run("reap", func(t *testing.T) {
		// A Job left by a server that crashed: a new runner reaps it.
		job := startSlow(t, 104)
		restarted := &Runner{Client: client, Namespace: testNamespace}
		if err := restarted.Reap(ctx, 104, t.TempDir()); err != nil {
			t.Fatal(err)
		}
		waitGone(t, c, 104)
		for range job.Events() {
		}
		if err := job.Wait(); err == nil {
			t.Error("Wait: nil for a reaped Job")
		}
	})

	t.Run("pull secrets", func(t *testing.T) {
		// The mirror through the real API server: the type and the data
		// key are checked there.
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "notebooks"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(filepath.Join(t.TempDir(), "imagehub.db"), make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.CreateSecret(ctx, &store.Secret{Name: "team-pull", RegistryHost: "registry.example", Username: "u", Password: "p"}); err != nil {
			t.Fatal(err)
		}
		if err := NewPullSecrets(c.Client, "notebooks", st, nil).Sync(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := c.Client.CoreV1().Secrets("notebooks").Get(ctx, "team-pull", metav1.GetOptions{})
		if err != nil || s.Type != corev1.SecretTypeDockerConfigJson {
			t.Errorf("mirrored: %v, %v", s, err)
		}
	})

	t.Run("sweep", func(t *testing.T) {
		// A Job whose build the restarted server does not know as running.
		job := startSlow(t, 105)
		restarted := &Runner{Client: client, Namespace: testNamespace}
		if err := restarted.Sweep(ctx, func(int64) bool { return false }); err != nil {
			t.Fatal(err)
		}
		waitGone(t, c, 105)
		for range job.Events() {
		}
		job.Wait()
		// The finished Jobs of the cases above stay until their TTL.
		if _, err := c.Client.BatchV1().Jobs(testNamespace).Get(ctx, jobName(101), metav1.GetOptions{}); err != nil {
			t.Errorf("a finished Job was swept: %v", err)
		}
	})
}

// waitGone waits until a build's Job, pod and Secret are gone: the garbage
// collector deletes the pod first (foreground), the test kubelet kills its
// process and deletes it, then the Job goes.
func waitGone(t *testing.T, c *kubetest.Cluster, buildID int64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, jobErr := c.Client.BatchV1().Jobs(testNamespace).Get(ctx, jobName(buildID), metav1.GetOptions{})
		pods, _ := c.Client.CoreV1().Pods(testNamespace).List(ctx, metav1.ListOptions{LabelSelector: buildSelector(buildID)})
		secrets, _ := c.Client.CoreV1().Secrets(testNamespace).List(ctx, metav1.ListOptions{LabelSelector: buildSelector(buildID)})
		if apierrors.IsNotFound(jobErr) && pods != nil && len(pods.Items) == 0 && secrets != nil && len(secrets.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("build %d: Job %v, %d pods, %d secrets still there", buildID, jobErr, len(pods.Items), len(secrets.Items))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func phasesOf(events []workerspec.Event) string {
	var s []string
	for _, ev := range events {
		s = append(s, string(ev.Phase))
	}
	return strings.Join(s, " ")
}
