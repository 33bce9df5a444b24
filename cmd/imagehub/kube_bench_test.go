package main

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkKubernetesRunner compares builds through the Kubernetes runner
// with the same builds through the local runner, the baseline, measured in
// the same run: two `imagehub serve`, one with --builder kubernetes on a
// real API server and Job controller (kubetest; the test kubelet runs each
// pod's real build-worker as a local process), one with the default local
// builder, both pushing to the same registry. Run it as root (about a minute
// of set-up, then some 20 s an iteration):
//
//	go test -tags "containers_image_openpgp exclude_graphdriver_btrfs" \
//	    -run '^$' -bench KubernetesRunner -benchtime 5x ./cmd/imagehub
//
// Each iteration:
//
//   - builds a new image of the same new recipe (the stub busybox base, an
//     apt line naming a package of this iteration's, a pip line) on each
//     server, one after the other, alternating which goes first, each timed
//     from its creation to its build's success (polled every 20 ms). No
//     RUN step is in either side's layer cache. A pod starts with an empty
//     store, so its time also holds pulling the base image, which the
//     local store has from the first iteration on, and pushing each step's
//     layer to the registry cache; and Kubernetes' own steps: the Job
//     controller making the pod, the pod starting, the Job controller
//     marking the Job complete, the runner seeing it (it looks every
//     500 ms). ratio_kube_vs_local is the median of Kubernetes seconds /
//     local seconds.
//   - cancels a build during its RUN step on each server, timed from the
//     cancel request to the build's cancelled status: cancel_kube_s and
//     cancel_local_s are the medians.
//
// ns/op is suppressed: it would mix both sides.
func BenchmarkKubernetesRunner(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a Kubernetes control plane")
	}
	needRoot(b)
	k := startKubeBuilds(b)
	kube, local := k.pushingServer(b, k.kubeArgs...), k.pushingServer(b)
	sleepy := map[string]string{"baseImage": k.base, "pullSecret": "team-registry", "apt": "sleepy"}
	var kubeS, localS, ratios, cancelKube, cancelLocal []float64
	for i := 0; b.Loop(); i++ {
		sides := []*server{kube, local}
		if i%2 == 1 {
			slices.Reverse(sides)
		}
		recipe := map[string]string{"baseImage": k.base, "pullSecret": "team-registry", "apt": fmt.Sprintf("jq\nbench-%d", i), "pip": "requests"}
		took := map[*server]float64{}
		for _, s := range sides {
			took[s] = timedBuild(b, s, fmt.Sprintf("bench-%d", i), recipe).Seconds()
		}
		kubeS, localS = append(kubeS, took[kube]), append(localS, took[local])
		ratios = append(ratios, took[kube]/took[local])
		ck := timedCancel(b, kube, fmt.Sprintf("bench-cancel-%d", i), sleepy).Seconds()
		cl := timedCancel(b, local, fmt.Sprintf("bench-cancel-%d", i), sleepy).Seconds()
		cancelKube, cancelLocal = append(cancelKube, ck), append(cancelLocal, cl)
		b.Logf("iteration %d: Kubernetes %.2fs, local %.2fs, ratio %.2f; cancel: Kubernetes %.3fs, local %.3fs",
			i+1, took[kube], took[local], ratios[i], ck, cl)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(median(ratios), "ratio_kube_vs_local")
	b.ReportMetric(median(kubeS), "kube_s")
	b.ReportMetric(median(localS), "local_s")
	b.ReportMetric(median(cancelKube), "cancel_kube_s")
	b.ReportMetric(median(cancelLocal), "cancel_local_s")
}

// timedBuild creates an image with recipe and times it until its build
// succeeded.
func timedBuild(b *testing.B, s *server, name string, recipe map[string]string) time.Duration {
	b.Helper()
	start := time.Now()
	build := s.createCustomImage(name, recipe)
	build = pollBuild(b, s, build.ID, "succeeded", "failed", "cancelled", "interrupted")
	if build.Status != "succeeded" {
		b.Fatalf("build %s: %+v\n%s", name, build, s.log(build.ID))
	}
	return time.Since(start)
}

// timedCancel starts a build whose RUN step sleeps, cancels it once the
// step runs, and times the cancel until the build is cancelled.
func timedCancel(b *testing.B, s *server, name string, recipe map[string]string) time.Duration {
	b.Helper()
	build := s.createCustomImage(name, recipe)
	s.waitLog(build.ID, "sleeping now", 3*time.Minute)
	start := time.Now()
	if code := s.api("POST", "/builds/"+strconv.FormatInt(build.ID, 10)+"/cancel", nil, nil); code >= http.StatusMultipleChoices {
		b.Fatalf("cancel %s: status %d", name, code)
	}
	build = pollBuild(b, s, build.ID, "cancelled", "failed", "succeeded", "interrupted")
	if build.Status != "cancelled" {
		b.Fatalf("cancelled build %s: %+v", name, build)
	}
	return time.Since(start)
}

// pollBuild polls a build every 20 ms until it reaches one of the states.
func pollBuild(b *testing.B, s *server, id int64, states ...string) apiBuild {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	var build apiBuild
	for time.Now().Before(deadline) {
		s.api("GET", "/builds/"+strconv.FormatInt(id, 10), nil, &build)
		if slices.Contains(states, build.Status) {
			return build
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("build %d is %q after 5 minutes, want one of %v\n%s", id, build.Status, states, s.log(id))
	return build
}
