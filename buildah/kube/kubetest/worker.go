package kubetest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// FakeWorker is the worker of test pods: run with the arguments the pod's
// command gets after `imagehub`, it speaks the worker's protocol (its log,
// the event lines marked with the spec's token) without building anything.
// What it does depends on the spec's Target: "fail" fails, "slow" runs until
// it is killed, "resume" writes its lines in three parts, the last two each
// after the test opened a gate, the file <build>-<n> in gates; anything
// else succeeds at once.
func FakeWorker(args []string, gates string) int {
	fs := flag.NewFlagSet("build-worker", flag.ContinueOnError)
	fs.Bool("in-pod", false, "")
	specPath := fs.String("spec", "", "")
	graphRoot := fs.String("graph-root", "", "")
	fs.String("run-root", "", "")
	tmpDir := fs.String("tmp-dir", "", "")
	if len(args) == 0 || args[0] != "build-worker" || fs.Parse(args[1:]) != nil {
		fmt.Println("fake worker: bad arguments", args)
		return 2
	}
	spec, err := workerspec.Load(*specPath)
	if err != nil {
		fmt.Println("fake worker:", err)
		return 1
	}
	event := func(ev workerspec.Event) {
		line, _ := workerspec.LogEventLine(spec.EventToken, ev)
		os.Stdout.Write(line)
	}
	// The pod's paths, rewritten by the test kubelet to folders of its own.
	fmt.Printf("fake worker: build %d, store %s, tmp %s\n", spec.BuildID, *graphRoot, *tmpDir)
	fmt.Print("STEP 1/2: FROM ", spec.BaseImage)
	event(workerspec.Event{Phase: workerspec.PhaseBuilding})
	switch {
	case strings.Contains(spec.Target, "fail"):
		fmt.Println("error: RUN pip install nosuchpackage: exit status 1")
		event(workerspec.Event{Phase: workerspec.PhaseDone, Error: "RUN pip install nosuchpackage: exit status 1"})
		return 1
	case strings.Contains(spec.Target, "slow"):
		fmt.Println("STEP 2/2: RUN sleep 600")
		time.Sleep(10 * time.Minute)
	case strings.Contains(spec.Target, "resume"):
		return resumeWorker(spec, event, gates)
	}
	fmt.Println("STEP 2/2: RUN true")
	event(workerspec.Event{Phase: workerspec.PhasePushing})
	fmt.Println("pushing", spec.Target)
	event(workerspec.Event{Phase: workerspec.PhaseDone, Digest: "sha256:" + strings.Repeat("ab", 32)})
	return 0
}

// resumeWorker writes "line 1" to "line 30", a step event before each ten
// and a batch of packages in the first and last ten, and waits for a gate
// before lines 11 and 21; then it pushes.
func resumeWorker(spec workerspec.Spec, event func(workerspec.Event), gates string) int {
	event(workerspec.Event{Phase: workerspec.PhaseBase, BaseDigest: "sha256:" + strings.Repeat("cd", 32)})
	for i := 1; i <= 30; i++ {
		if i%10 == 1 {
			if i > 1 && !waitGate(gates, spec.BuildID, i/10) {
				return 1
			}
			event(workerspec.Event{Phase: workerspec.PhaseStep, Step: i/10 + 1, Steps: 3})
		}
		fmt.Printf("line %d\n", i)
		if i == 5 || i == 25 {
			event(workerspec.Event{Phase: workerspec.PhasePackages, Packages: []store.Package{{Manager: store.ManagerPip, Name: fmt.Sprintf("pkg%d", i), Version: "1.0"}}})
		}
	}
	event(workerspec.Event{Phase: workerspec.PhasePushing})
	fmt.Println("pushing", spec.Target)
	event(workerspec.Event{Phase: workerspec.PhaseDone, Digest: "sha256:" + strings.Repeat("ef", 32), PackagesListed: true})
	return 0
}

func waitGate(gates string, buildID int64, n int) bool {
	for range 6000 {
		if _, err := os.Stat(filepath.Join(gates, fmt.Sprintf("%d-%d", buildID, n))); err == nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("fake worker: gate", n, "never opened")
	return false
}
