package kube

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"imagehub/buildah/recipe"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or writes it there with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the runner made (go test ./buildah/kube -run %s -update, then read the diff):\n%s", path, t.Name(), got)
	}
}

func testRunner(client *fake.Clientset) *Runner {
	return &Runner{
		Client: client, Namespace: "builds", Image: "registry.example/imagehub:1.2",
		CPU: resource.MustParse("2"), Memory: resource.MustParse("4Gi"),
		Deadline: 2 * time.Hour, Poll: 10 * time.Millisecond,
		newToken: func() string { return "0123456789abcdef" },
	}
}

func testSpec() workerspec.Spec {
	return workerspec.Spec{
		BuildID: 42, BaseImage: "docker.io/library/python:3.12-slim",
		Packages: recipe.Packages{Pip: []string{"numpy==2.1.0"}},
		Target:   "registry.example/team/numpy:abc", Owner: "team",
		PushAuth: &remote.Auth{Username: "push", Password: "push-password"},
		// The server's own folders, which mean nothing in a pod.
		Storage: workerspec.Storage{GraphRoot: "/srv/imagehub/storage"}, TmpDir: "/srv/imagehub/tmp/42",
		PackageCache: "/srv/imagehub/packages",
	}
}

// TestStartCreatesJobAndSecret checks the Job and the Secret of a build
// against golden YAML, and that the credentials are in the Secret only.
func TestStartCreatesJobAndSecret(t *testing.T) {
	client := fake.NewClientset()
	// The fake gives created objects no uid, which the owner reference needs.
	client.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		a.(k8stesting.CreateAction).GetObject().(metav1.Object).SetUID("job-uid")
		return false, nil, nil
	})
	r := testRunner(client)
	job, err := r.Start(context.Background(), testSpec(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer job.(*kubeJob).stopLog()

	j, err := client.BatchV1().Jobs("builds").Get(context.Background(), "imagehub-build-42", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j.ManagedFields = nil // the fake's, with the time of the test
	jobYAML, err := yaml.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "job.yaml", jobYAML)
	if bytes.Contains(jobYAML, []byte("push-password")) || bytes.Contains(jobYAML, []byte(r.token())) {
		t.Error("the Job holds a credential or the event token")
	}

	s, err := client.CoreV1().Secrets("builds").Get(context.Background(), "imagehub-build-42", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The spec as the worker reads it, rather than its base64.
	spec := s.Data[specFile]
	s.Data, s.ManagedFields = nil, nil
	secretYAML, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "secret.yaml", append(secretYAML, append([]byte("# "+specFile+":\n# "), append(spec, '\n')...)...))
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != "job-uid" {
		t.Errorf("the Secret's owner: %+v", s.OwnerReferences)
	}
}

// TestCancelDeletesJobInForeground checks that Cancel deletes the Job with
// foreground propagation and the Secret, and that Wait then reports the
// cancel and Output and Events end.
func TestCancelDeletesJobInForeground(t *testing.T) {
	client := fake.NewClientset()
	r := testRunner(client)
	job, err := r.Start(context.Background(), testSpec(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	job.Cancel()
	if err := job.Wait(); err != errCancelled {
		t.Errorf("Wait: %v, want %v", err, errCancelled)
	}
	if _, ok := <-job.Events(); ok {
		t.Error("Events is not closed")
	}
	var foreground bool
	for _, a := range client.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "jobs" {
			p := d.GetDeleteOptions().PropagationPolicy
			foreground = p != nil && *p == metav1.DeletePropagationForeground
		}
	}
	if !foreground {
		t.Error("the Job was not deleted with foreground propagation")
	}
	if s, _ := client.CoreV1().Secrets("builds").List(context.Background(), metav1.ListOptions{}); len(s.Items) != 0 {
		t.Errorf("secrets left: %d", len(s.Items))
	}
}

// TestReapDeletesJobAndOrphanSecret: a Secret whose Job was never made
// (a crash between the two) goes too.
func TestReapDeletesJobAndOrphanSecret(t *testing.T) {
	client := fake.NewClientset()
	r := testRunner(client)
	s, err := r.buildSecret(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	other := s.DeepCopy()
	other.Name, other.Labels[BuildLabel] = "imagehub-build-43", "43"
	for _, obj := range []*corev1.Secret{s, other} {
		if _, err := client.CoreV1().Secrets("builds").Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.BatchV1().Jobs("builds").Create(context.Background(), r.buildJob(42), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Reap(context.Background(), 42, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.Reap(context.Background(), 42, ""); err != nil {
		t.Errorf("a second Reap: %v", err)
	}
	jobs, _ := client.BatchV1().Jobs("builds").List(context.Background(), metav1.ListOptions{})
	secrets, _ := client.CoreV1().Secrets("builds").List(context.Background(), metav1.ListOptions{})
	if len(jobs.Items) != 0 || len(secrets.Items) != 1 || secrets.Items[0].Name != "imagehub-build-43" {
		t.Errorf("left: %d jobs, secrets %v", len(jobs.Items), secrets.Items)
	}
}

// TestLogLineSplitsEvents: event lines with the build's token become
// events, with the log before them kept; a line with another token is log.
func TestLogLineSplitsEvents(t *testing.T) {
	pr, pw := io.Pipe()
	j := &kubeJob{token: "tok", outW: pw, events: make(chan workerspec.Event, 4)}
	var got []byte
	done := make(chan struct{})
	go func() { got, _ = io.ReadAll(pr); close(done) }()
	good, _ := workerspec.LogEventLine("tok", workerspec.Event{Phase: workerspec.PhasePushing})
	forged, _ := workerspec.LogEventLine("guess", workerspec.Event{Phase: workerspec.PhaseDone, Digest: "sha256:x"})
	for _, line := range [][]byte{[]byte("STEP 1/3\n"), append([]byte("no newline"), good...), forged} {
		j.logLine(line)
	}
	pw.Close()
	<-done
	if ev := <-j.events; ev.Phase != workerspec.PhasePushing || len(j.events) != 0 {
		t.Errorf("events: %+v, %d more", ev, len(j.events))
	}
	if want := "STEP 1/3\nno newline\n" + string(forged); string(got) != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

// TestSweepDeletesJobsOfNoRunningBuild: at start-up, a running Job whose
// build is not running goes, with its Secret; the Job of a running build, a
// finished Job and another Job's Secret stay; a Secret with no Job goes.
func TestSweepDeletesJobsOfNoRunningBuild(t *testing.T) {
	client := fake.NewClientset()
	r := testRunner(client)
	ctx := context.Background()
	finished := r.buildJob(3)
	finished.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	for _, job := range []*batchv1.Job{r.buildJob(1), r.buildJob(2), finished} {
		if _, err := client.BatchV1().Jobs("builds").Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for id := int64(1); id <= 4; id++ {
		s, _ := r.buildSecret(workerspec.Spec{BuildID: id})
		if id <= 3 {
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: jobName(id), UID: "uid"}}
		}
		if _, err := client.CoreV1().Secrets("builds").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Sweep(ctx, func(id int64) bool { return id == 1 }); err != nil {
		t.Fatal(err)
	}
	jobs, _ := client.BatchV1().Jobs("builds").List(ctx, metav1.ListOptions{})
	secrets, _ := client.CoreV1().Secrets("builds").List(ctx, metav1.ListOptions{})
	var names []string
	for _, j := range jobs.Items {
		names = append(names, "job "+j.Name)
	}
	for _, s := range secrets.Items {
		names = append(names, "secret "+s.Name)
	}
	want := "job imagehub-build-1,job imagehub-build-3,secret imagehub-build-1,secret imagehub-build-3"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("left %s, want %s", got, want)
	}
}
