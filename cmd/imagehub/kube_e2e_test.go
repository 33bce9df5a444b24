package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"imagehub/buildah/kube"
	"imagehub/buildah/kube/kubetest"
)

// fakeWorkerArg, as this binary's first argument, makes it the fake worker
// of a test pod (kubetest.FakeWorker), the second being its gates folder.
const fakeWorkerArg = "kube-fake-worker"

// `imagehub serve --builder kubernetes` against a real API server and Job
// controller (kubetest), killed with SIGKILL in the middle of a build and
// started again on the same data folder. The build's Job goes on while no
// server runs and writes lines; the new server follows it again: the build
// ends succeeded with its digest, its log holding every line once, in order.
// The pod's worker is kubetest.FakeWorker (no buildah in the test kubelet).
func TestServerKilledMidBuildOnKubernetes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kubernetes control plane")
	}
	const ns = "imagehub-builds"
	c := kubetest.Start(t)
	c.Apply(t, "../../deploy/kubernetes/namespaces.yaml", false)
	gates := t.TempDir()
	kubetest.StartKubelet(t, c, ns, map[string][]string{"imagehub": {os.Args[0], fakeWorkerArg, gates}})
	s := &server{t: t, data: filepath.Join(t.TempDir(), "data"), addr: freeAddr(t), regAdr: freeAddr(t),
		args: []string{"--builder", "kubernetes", "--kubeconfig", c.Kubeconfig, "--kube-namespace", ns,
			"--worker-image", "registry.test/imagehub:1", "--registry", "registry.test/imagehub"}}
	s.start()
	b := s.createCustomImage("kube-resume", map[string]string{"baseImage": "busybox", "pip": "numpy"})
	s.waitLog(b.ID, "line 10\n", time.Minute)
	s.kill9()

	// No server runs; the Job goes on to line 20.
	job := fmt.Sprintf("imagehub-build-%d", b.ID)
	if _, err := c.Client.BatchV1().Jobs(ns).Get(context.Background(), job, metav1.GetOptions{}); err != nil {
		t.Fatalf("the build's Job once the server was killed: %v", err)
	}
	openGate(t, gates, b.ID, 1)
	waitPodWrote(t, c, ns, b.ID, "line 20\n")

	s.start()
	s.waitLog(b.ID, "line 20\n", time.Minute)
	openGate(t, gates, b.ID, 2)
	got := s.waitBuild(b.ID, time.Minute, "succeeded", "failed", "interrupted", "cancelled")
	log := s.log(b.ID)
	if got.Status != "succeeded" || got.Digest != "sha256:"+strings.Repeat("ef", 32) {
		t.Errorf("build after the restart: %+v\n%s", got, log)
	}
	var want []string
	for i := 1; i <= 30; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	var lines []string
	seen := map[string]bool{}
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "line ") {
			lines = append(lines, l)
		}
		if l != "" && seen[l] {
			t.Errorf("line %q twice", l)
		}
		seen[l] = true
	}
	if strings.Join(lines, ",") != strings.Join(want, ",") {
		t.Errorf("the worker's lines in the log: %v\n%s", lines, log)
	}
}

func openGate(t *testing.T, gates string, buildID int64, n int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(gates, fmt.Sprintf("%d-%d", buildID, n)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitPodWrote waits until a build's pod has written text, read through the
// API.
func waitPodWrote(t *testing.T, c *kubetest.Cluster, ns string, buildID int64, text string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%d", kube.BuildLabel, buildID)})
		if err == nil && len(pods.Items) == 1 {
			b, err := c.Client.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			if err == nil && strings.Contains(string(b), text) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the pod of build %d never wrote %q", buildID, text)
}
