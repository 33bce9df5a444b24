package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/queue"
	"imagehub/buildah/recipe"
	"imagehub/buildah/workerspec"
)

// workerHelperEnv, when set, makes TestWorkerCommandHelper the build worker:
// the test binary started by a queue.LocalRunner, as the server starts
// `imagehub build-worker`.
const workerHelperEnv = "IMAGEHUB_WORKER_HELPER"

// TestWorkerCommandHelper is `imagehub build-worker ARGS` inside the test
// binary: it runs Command, as cmd/imagehub does. Run any other way, it skips.
func TestWorkerCommandHelper(t *testing.T) {
	if os.Getenv(workerHelperEnv) == "" {
		t.Skip("run as the build worker by the runner tests and benchmarks")
	}
	args := os.Args[1:]
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(Command(context.Background(), args))
}

// helperRunner is a runner whose workers are TestWorkerCommandHelper; the
// caller sets workerHelperEnv.
func helperRunner(st workerspec.Storage) queue.LocalRunner {
	return queue.LocalRunner{Exe: os.Args[0], Args: []string{"-test.run=^TestWorkerCommandHelper$", "--"}, Storage: st,
		Env: []string{workerHelperEnv + "=1"}}
}

func TestWorkerMainReportsFailureAsEvent(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	if err := workerspec.Write(spec, workerspec.Spec{BuildID: 4}); err != nil {
		t.Fatal(err)
	}
	var events bytes.Buffer
	var got workerspec.Spec
	code := workerMain(context.Background(), spec, io.Discard, &eventSink{w: &events},
		func(_ context.Context, s workerspec.Spec, _ io.Writer, _ func(workerspec.Event)) error {
			got = s
			return errors.New("no pip in\nthe base image")
		})
	var ev workerspec.Event
	json.Unmarshal(events.Bytes(), &ev)
	if code != 1 || got.BuildID != 4 || !reflect.DeepEqual(ev, workerspec.Event{Phase: workerspec.PhaseDone, Error: "no pip in the base image"}) {
		t.Errorf("code %d, build %d, event %+v", code, got.BuildID, ev)
	}
	if _, err := os.Stat(spec); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the spec file was not deleted (%v)", err)
	}

	events.Reset()
	code = workerMain(context.Background(), spec, io.Discard, &eventSink{w: &events}, nil)
	json.Unmarshal(events.Bytes(), &ev)
	if code != 1 || ev.Phase != workerspec.PhaseDone || !strings.Contains(ev.Error, "worker spec") {
		t.Errorf("missing spec: code %d, event %+v", code, ev)
	}
}

// TestPodMainSendsEventsInLog: a worker in a pod leaves its spec file (a
// Secret's), works in the pod's folders, and sends its events as lines of
// its log marked with the spec's token.
func TestPodMainSendsEventsInLog(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	if err := workerspec.Write(spec, workerspec.Spec{BuildID: 5, EventToken: "tok", TmpDir: "/srv/not/here"}); err != nil {
		t.Fatal(err)
	}
	st := workerspec.Storage{GraphRoot: filepath.Join(dir, "storage")}
	var log bytes.Buffer
	var got workerspec.Spec
	code := podMain(context.Background(), spec, st, filepath.Join(dir, "tmp"), &log,
		func(_ context.Context, s workerspec.Spec, log io.Writer, events func(workerspec.Event)) error {
			got = s
			io.WriteString(log, "STEP 1/2")
			events(workerspec.Event{Phase: workerspec.PhasePushing})
			return errors.New("push refused")
		})
	if code != 1 || got.Storage != st || got.TmpDir != filepath.Join(dir, "tmp") {
		t.Errorf("code %d, storage %+v, tmp %s", code, got.Storage, got.TmpDir)
	}
	if _, err := os.Stat(spec); err != nil {
		t.Errorf("the spec file is gone: %v", err)
	}
	var events []workerspec.Event
	for _, line := range strings.SplitAfter(log.String(), "\n") {
		if _, ev, ok := workerspec.ParseLogEvent("tok", []byte(line)); ok {
			events = append(events, ev)
		}
	}
	want := []workerspec.Event{{Phase: workerspec.PhasePushing}, {Phase: workerspec.PhaseDone, Error: "push refused"}}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events %+v in the log %q", events, log.String())
	}

	os.WriteFile(spec, []byte(`{"buildId":6}`), 0o600)
	if code := podMain(context.Background(), spec, st, dir, &log, nil); code != 1 {
		t.Errorf("a spec with no event token: code %d", code)
	}
}

// TestLocalRunnerRealBuild runs real workers through the server's runner: one
// build to its end, and one cancelled in the middle of a RUN step, which must
// leave no process and no working container behind (the runner removes them
// with `build-worker --cleanup`), within 2 s.
func TestLocalRunnerRealBuild(t *testing.T) {
	buildtest.NeedRoot(t)
	t.Setenv(workerHelperEnv, "1")
	reg, st := buildtest.Registry(t, ""), newTestStorage(t)
	base, _ := pushTestBase(t, reg, st, testBase{name: "runner/busybox", extra: allStubs()})
	r := helperRunner(st)

	spec := testSpec(t, 201, st, reg, base, "team/ok:1", recipe.Packages{Pip: []string{"numpy"}})
	j, err := r.Start(context.Background(), spec, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	go io.Copy(io.Discard, j.Output())
	var events []workerspec.Event
	for ev := range j.Events() {
		events = append(events, ev)
	}
	if err := j.Wait(); err != nil || len(events) == 0 || events[len(events)-1].Phase != workerspec.PhaseDone || events[len(events)-1].Digest == "" {
		t.Fatalf("Wait = %v, events %v", err, events)
	}
	t.Logf("a real build through the runner took %s", time.Since(start))

	spec = testSpec(t, 202, st, reg, base, "team/cancelled:1", recipe.Packages{Apt: []string{"sleepy"}})
	dir := t.TempDir()
	j, err = r.Start(context.Background(), spec, dir)
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(j.Output())
	var log strings.Builder
	for !strings.Contains(log.String(), "sleeping now") {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("worker output ended: %v\n%s", err, log.String())
		}
		log.WriteString(line)
	}
	pids := descendantsOf(workerPid(t, dir))
	start = time.Now()
	j.Cancel()
	go io.Copy(io.Discard, out)
	for range j.Events() {
	}
	err = j.Wait()
	took := time.Since(start)
	t.Logf("cancel: %d processes, Wait = %v after %s", len(pids), err, took)
	if took > 2*time.Second {
		t.Errorf("cancelling a real build took %s", took)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			t.Errorf("process %d survived the cancel", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if left := buildContainers(t, st, 202); len(left) != 0 {
		t.Errorf("working containers left: %v", left)
	}
}

// workerPid reads the pid a LocalRunner recorded for its worker in dir.
func workerPid(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "worker.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ PID int }
	if err := json.Unmarshal(b, &f); err != nil || f.PID == 0 {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return f.PID
}

// zombie reports whether pid has exited and waits to be reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}
