package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/kube"
	"imagehub/buildah/kube/kubetest"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
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

// `imagehub serve --builder kubernetes` running real builds: each build's
// Job gets its pod from the real Job controller, the test kubelet runs the
// pod's command, which is this imagehub binary's `build-worker --in-pod`
// with the spec from the Job's Secret, and the worker builds with buildah,
// pushes to an external registry that demands a password, and the image
// enters the catalogue. The kubelet runs it as root and without a user
// namespace; rootless buildah inside a real pod is checked on paper only
// (README, "Builds on Kubernetes").
func TestBuildOnKubernetes(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("starts a Kubernetes control plane")
	}
	k := startKubeBuilds(t)
	s, reg, auth := k.pushingServer(t, k.kubeArgs...), k.reg, k.auth
	recipe := func(apt, pip string) map[string]string {
		return map[string]string{"baseImage": k.base, "pullSecret": "team-registry", "apt": apt, "pip": pip}
	}

	// A rebuild with one more pip line runs in a new pod, whose store
	// starts empty: the layers of the steps before the pip step come from
	// the layer cache the first pod pushed beside the image,
	// IMAGE-buildcache.
	t.Run("build, then rebuild through the registry cache", func(t *testing.T) {
		first := s.createCustomImage("kube-real", recipe("jq", "requests"))
		first = s.waitBuild(first.ID, 5*time.Minute, "succeeded", "failed", "cancelled", "interrupted")
		log := s.log(first.ID)
		if first.Status != "succeeded" || !strings.HasPrefix(first.TargetImage, reg.Addr()+"/team/kube-real:") {
			t.Fatalf("build on Kubernetes: %+v\n%s\nserver:\n%s", first, log, s.out)
		}
		if got := skopeoDigest(t, first.TargetImage, auth); got != first.Digest {
			t.Errorf("the registry holds %s as %s, the build says %s", first.TargetImage, got, first.Digest)
		}
		var img apiImage
		s.api("GET", "/images/kube-real", nil, &img)
		if want := first.TargetImage + "@" + first.Digest; !img.Ready || img.URL != want {
			t.Errorf("the catalogue's image: %+v, want ready at %s", img, want)
		}
		for _, want := range []string{"apt-get update", "Pushing " + first.TargetImage, "--> Pushing cache"} {
			if !strings.Contains(log, want) {
				t.Errorf("the build's log lacks %q:\n%s", want, log)
			}
		}
		if strings.Contains(log, auth.Password) || strings.Contains(log, "imagehub-event") {
			t.Errorf("the log holds the password or an event line:\n%s", log)
		}
		var pkgs struct {
			Total int `json:"total"`
		}
		if s.api("GET", fmt.Sprintf("/builds/%d/packages", first.ID), nil, &pkgs); pkgs.Total == 0 {
			t.Errorf("the pod's worker listed no packages (the apt stub records jq)")
		}

		var second apiBuild
		if code := s.api("POST", "/images/kube-real/rebuild", recipe("jq", "requests\nsix"), &second); code != http.StatusAccepted {
			t.Fatalf("rebuild: %d %+v", code, second)
		}
		second = s.waitBuild(second.ID, 5*time.Minute, "succeeded", "failed", "cancelled", "interrupted")
		log = s.log(second.ID)
		if second.Status != "succeeded" || second.Digest == first.Digest {
			t.Fatalf("the rebuild: %+v (first %+v)\n%s", second, first, log)
		}
		if !strings.Contains(log, "--> Cache pulled from remote") {
			t.Errorf("the rebuild's new pod took no layer from the registry cache:\n%s", log)
		}
		if tags, err := skopeo("list-tags", auth, "docker://"+reg.Addr()+"/team/kube-real-buildcache"); err != nil || !strings.Contains(tags, `"Tags"`) {
			t.Errorf("the layer cache repository: %s %v", tags, err)
		}
	})

	t.Run("a failing build", func(t *testing.T) {
		r := recipe("", "requests")
		r["baseImage"] = reg.Addr() + "/base/nothing:here"
		b := s.createCustomImage("kube-failing", r)
		b = s.waitBuild(b.ID, 5*time.Minute, "succeeded", "failed", "cancelled", "interrupted")
		if b.Status != "failed" || !strings.Contains(b.Error, "base image") {
			t.Errorf("a build on a base image that does not exist: %+v\n%s", b, s.log(b.ID))
		}
	})

	t.Run("cancel during a RUN step", func(t *testing.T) {
		b := s.createCustomImage("kube-cancel", recipe("sleepy", ""))
		s.waitLog(b.ID, "sleeping now", 3*time.Minute)
		start := time.Now()
		if code := s.api("POST", fmt.Sprintf("/builds/%d/cancel", b.ID), nil, nil); code >= http.StatusMultipleChoices {
			t.Fatalf("cancel: status %d", code)
		}
		b = s.waitBuild(b.ID, 5*time.Second, "cancelled", "failed", "succeeded", "interrupted")
		if b.Status != "cancelled" {
			t.Errorf("after cancel: %+v", b)
		}
		t.Logf("cancelled in %s", time.Since(start).Round(time.Millisecond))
		waitJobGone(t, k.cluster, b.ID)
	})

	t.Run("the server killed in the middle of a build", func(t *testing.T) {
		b := s.createCustomImage("kube-napping", recipe("napping", ""))
		s.waitLog(b.ID, "napping 2\n", 3*time.Minute)
		s.kill9()
		s.start()
		b = s.waitBuild(b.ID, 3*time.Minute, "succeeded", "failed", "cancelled", "interrupted")
		log := s.log(b.ID)
		if b.Status != "succeeded" || b.Digest == "" {
			t.Fatalf("the build after the restart: %+v\n%s", b, log)
		}
		for i := 1; i <= 6; i++ {
			if n := strings.Count(log, fmt.Sprintf("napping %d\n", i)); n != 1 {
				t.Errorf("napping %d is %d times in the log:\n%s", i, n, log)
			}
		}
	})
}

// waitJobGone waits until a build's Job is deleted.
func waitJobGone(t *testing.T, c *kubetest.Cluster, buildID int64) {
	t.Helper()
	job := fmt.Sprintf("imagehub-build-%d", buildID)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, err := c.Client.BatchV1().Jobs(kubeBuildNamespace).Get(context.Background(), job, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
	}
	t.Errorf("the Job %s is still there", job)
}

// kubeBuilds is what a test of real builds on Kubernetes runs: a control
// plane (kubetest) whose test kubelet runs the pods' `imagehub build-worker`
// as this imagehub binary, an external registry that demands a password,
// and the stub base image in it.
type kubeBuilds struct {
	cluster *kubetest.Cluster
	reg     *registry.Server
	auth    *remote.Auth
	base    string
	// kubeArgs make a server build on this cluster.
	kubeArgs []string
}

const kubeBuildNamespace = "imagehub-builds"

func startKubeBuilds(tb testing.TB) kubeBuilds {
	tb.Helper()
	const user, password = "pusher", "push-pass-0123456789"
	c := kubetest.Start(tb)
	c.Apply(tb, "../../deploy/kubernetes/namespaces.yaml", false)
	kubetest.StartKubelet(tb, c, kubeBuildNamespace, map[string][]string{"imagehub": {binary}})
	reg := buildtest.Registry(tb, buildtest.Htpasswd(tb, user, password))
	auth := &remote.Auth{Username: user, Password: password}
	return kubeBuilds{
		cluster: c, reg: reg, auth: auth, base: pushBaseTo(tb, reg.Addr(), auth),
		kubeArgs: []string{"--builder", "kubernetes", "--kubeconfig", c.Kubeconfig, "--kube-namespace", kubeBuildNamespace,
			"--worker-image", "registry.test/imagehub:1"},
	}
}

// pushingServer starts a server that pushes to the registry with the
// secret team-registry, with args added.
func (k kubeBuilds) pushingServer(tb testing.TB, args ...string) *server {
	tb.Helper()
	s := startServer(tb, "", nil)
	if code := s.api("POST", "/secrets", map[string]string{"name": "team-registry", "registryHost": k.reg.Addr(),
		"username": k.auth.Username, "password": k.auth.Password}, nil); code != http.StatusCreated {
		tb.Fatalf("create secret: %d", code)
	}
	s.stop()
	s.args = append([]string{"--registry", k.reg.Addr() + "/team", "--push-secret", "team-registry", "--insecure-registries", k.reg.Addr()}, args...)
	s.start()
	return s
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
