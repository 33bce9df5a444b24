package queue

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
)

// The runner tests start this test binary as the worker: with
// IMAGEHUB_TEST_RUNNER_MODE set, TestRunnerHelperWorker speaks the worker's
// side of the contract (workerspec) with a fake build instead of buildah. The
// real worker goes through this runner in the worker package's tests.
const helperEnv = "IMAGEHUB_TEST_RUNNER_MODE"

func TestRunnerHelperWorker(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("run as a build worker by the runner tests")
	}
	specPath := os.Args[len(os.Args)-1]
	syscall.CloseOnExec(workerspec.EventFD) // as the real worker: no child may hold the pipe
	events := os.NewFile(workerspec.EventFD, "events")
	send := func(e workerspec.Event) {
		b, _ := json.Marshal(e)
		events.Write(append(b, '\n'))
	}
	spec, err := workerspec.Read(specPath)
	if err == nil {
		err = fakeWorker(mode)(context.Background(), spec, os.Stdout, send)
	}
	if err != nil {
		send(workerspec.Event{Phase: workerspec.PhaseDone, Error: workerspec.Reason(err)})
		os.Exit(1)
	}
	os.Exit(0)
}

// fakeWorker returns a stand-in for RunWorker that behaves as mode says.
func fakeWorker(mode string) func(context.Context, workerspec.Spec, io.Writer, func(workerspec.Event)) error {
	return func(ctx context.Context, spec workerspec.Spec, log io.Writer, events func(workerspec.Event)) error {
		switch mode {
		case "ok":
			fmt.Fprintf(log, "args %q\n", os.Args)
			fmt.Fprintf(log, "build %d tmp %s\n", spec.BuildID, os.Getenv("TMPDIR"))
			events(workerspec.Event{Phase: workerspec.PhaseBuilding})
			fmt.Fprint(os.Stderr, "from stderr\n")
			events(workerspec.Event{Phase: workerspec.PhasePushing})
			fmt.Fprint(log, "no newline at the end")
			events(workerspec.Event{Phase: workerspec.PhaseDone, Digest: "sha256:abc"})
			return nil
		case "fail":
			fmt.Fprintln(log, "step 1")
			return errors.New("apt-get failed:\n  exit status 100")
		case "crash":
			fmt.Fprintln(log, "boom")
			os.Exit(2)
		case "tree":
			events(workerspec.Event{Phase: workerspec.PhaseBuilding})
			startChildren(log)
			fmt.Fprintln(log, "ready")
			select {}
		case "linger":
			// A process in the worker's group that keeps stdout open.
			cmd := exec.Command("sleep", "1000")
			cmd.Stdout = os.Stdout
			cmd.Start()
			fmt.Fprintf(log, "child %d\n", cmd.Process.Pid)
			events(workerspec.Event{Phase: workerspec.PhaseDone, Digest: "sha256:def"})
			return nil
		}
		return fmt.Errorf("unknown mode %q", mode)
	}
}

// startChildren starts processes that try to escape a kill of the worker's
// process group, and prints their pids.
func startChildren(log io.Writer) {
	attrs := []*syscall.SysProcAttr{
		nil,            // in the worker's group
		{Setsid: true}, // in a session of its own
		{Setsid: true, Cloneflags: syscall.CLONE_NEWNS}, // and another mount namespace (as root)
	}
	for _, a := range attrs {
		cmd := exec.Command("sleep", "1000")
		cmd.SysProcAttr = a
		if cmd.Start() == nil {
			fmt.Fprintf(log, "child %d\n", cmd.Process.Pid)
		}
	}
	// A grandchild in its own session, below a shell in another one.
	cmd := exec.Command("sh", "-c", `setsid sleep 1000 & echo "child $!"; wait`)
	cmd.Stdout = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cmd.Start() == nil {
		fmt.Fprintf(log, "child %d\n", cmd.Process.Pid)
	}
	time.Sleep(100 * time.Millisecond) // let the shell print its child
}

// testRunner returns a runner that starts the helper in mode and counts the
// clean-ups it does.
func testRunner(t *testing.T, mode string) (LocalRunner, *cleanups) {
	t.Setenv(helperEnv, mode)
	c := &cleanups{}
	return LocalRunner{
		Exe:     os.Args[0],
		Args:    []string{"-test.run=^TestRunnerHelperWorker$", "--", "build-worker"},
		Env:     []string{helperEnv + "=" + mode},
		cleanup: c.record,
	}, c
}

// cleanups records the builds whose working containers were removed.
type cleanups struct {
	mu  sync.Mutex
	ids []int64
}

func (c *cleanups) record(_ workerspec.Storage, id int64, _ string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
	return 0, nil
}

func (c *cleanups) get() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.ids...)
}

// finished is what a job produced.
type finished struct {
	output string
	events []workerspec.Event
	err    error
	took   time.Duration
}

// finish reads a job to its end, as the queue does.
func finish(t *testing.T, j Job) finished {
	t.Helper()
	start := time.Now()
	var f finished
	outDone := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(j.Output())
		outDone <- b
	}()
	for ev := range j.Events() {
		f.events = append(f.events, ev)
	}
	f.err = j.Wait()
	select {
	case b := <-outDone:
		f.output = string(b)
	case <-time.After(10 * time.Second):
		t.Fatal("the output did not end")
	}
	f.took = time.Since(start)
	return f
}

func TestLocalRunnerRunsAWorker(t *testing.T) {
	r, c := testRunner(t, "ok")
	dir, tmp := t.TempDir(), t.TempDir()
	spec := workerspec.Spec{BuildID: 5, TmpDir: tmp, PushAuth: &remote.Auth{Username: "u", Password: "s3cret"}}
	j, err := r.Start(context.Background(), spec, dir)
	if err != nil {
		t.Fatal(err)
	}
	f := finish(t, j)
	if f.err != nil {
		t.Fatalf("Wait = %v, output:\n%s", f.err, f.output)
	}
	want := []workerspec.Event{{Phase: workerspec.PhaseBuilding}, {Phase: workerspec.PhasePushing}, {Phase: workerspec.PhaseDone, Digest: "sha256:abc"}}
	if fmt.Sprint(f.events) != fmt.Sprint(want) {
		t.Errorf("events = %v, want %v", f.events, want)
	}
	for _, s := range []string{"build 5 tmp " + tmp + "\n", "from stderr\n", "--spec", "no newline at the end"} {
		if !strings.Contains(f.output, s) {
			t.Errorf("output lacks %q:\n%s", s, f.output)
		}
	}
	if strings.Contains(f.output, "s3cret") {
		t.Errorf("the password is on the command line:\n%s", f.output)
	}
	for _, name := range []string{workerSpecFile, workerPidFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", name, err)
		}
	}
	if ids := c.get(); len(ids) != 0 {
		t.Errorf("a successful build was cleaned up: %v", ids)
	}
}

func TestLocalRunnerFailures(t *testing.T) {
	tests := []struct {
		mode, exit, reason string
	}{
		{"fail", "exit status 1", "apt-get failed: exit status 100"},
		{"crash", "exit status 2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			r, c := testRunner(t, tt.mode)
			j, err := r.Start(context.Background(), workerspec.Spec{BuildID: 8}, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			f := finish(t, j)
			if f.err == nil || f.err.Error() != tt.exit {
				t.Errorf("Wait = %v, want %s", f.err, tt.exit)
			}
			var reason string
			if n := len(f.events); n > 0 {
				reason = f.events[n-1].Error
			}
			if reason != tt.reason {
				t.Errorf("reason = %q, want %q", reason, tt.reason)
			}
			if ids := c.get(); len(ids) != 1 || ids[0] != 8 {
				t.Errorf("cleaned up %v, want [8]", ids)
			}
		})
	}
}

// startTree starts the helper in "tree" mode and returns the job and the
// pids of the processes it started, once they all run.
func startTree(t *testing.T, r LocalRunner, dir string) (Job, []int, *bufio.Reader) {
	t.Helper()
	j, err := r.Start(context.Background(), workerspec.Spec{BuildID: 11}, dir)
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(j.Output())
	var pids []int
	for {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("worker output ended: %v", err)
		}
		if pid, ok := strings.CutPrefix(strings.TrimSpace(line), "child "); ok {
			n, _ := strconv.Atoi(pid)
			pids = append(pids, n)
		}
		if line == "ready\n" {
			break
		}
	}
	if len(pids) < 4 {
		t.Fatalf("only %d children started", len(pids))
	}
	return j, pids, out
}

// alive reports whether pid runs (a zombie is dead).
func alive(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.state != 'Z'
}

// checkAllGone fails for every pid still running after a short while.
func checkAllGone(t *testing.T, pids []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	waitGone(ctx, pids)
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d survived", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func TestLocalRunnerCancelKillsEverything(t *testing.T) {
	r, c := testRunner(t, "tree")
	j, pids, out := startTree(t, r, t.TempDir())
	go io.Copy(io.Discard, out)
	start := time.Now()
	j.Cancel()
	var events []workerspec.Event
	for ev := range j.Events() {
		events = append(events, ev)
	}
	err := j.Wait()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("cancel took %s", took)
	}
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Wait = %v, want killed", err)
	}
	checkAllGone(t, pids)
	if ids := c.get(); len(ids) != 1 || ids[0] != 11 {
		t.Errorf("cleaned up %v, want [11]", ids)
	}
	if len(events) != 1 || events[0].Phase != workerspec.PhaseBuilding {
		t.Errorf("events = %v", events)
	}
}

func TestLocalRunnerOutputEndsDespiteLingeringChild(t *testing.T) {
	r, _ := testRunner(t, "linger")
	j, err := r.Start(context.Background(), workerspec.Spec{BuildID: 3}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := finish(t, j)
	if f.err != nil || f.took > outputGrace+time.Second {
		t.Errorf("Wait = %v after %s", f.err, f.took)
	}
	if n := len(f.events); n == 0 || f.events[n-1].Digest != "sha256:def" {
		t.Errorf("events = %v", f.events)
	}
	var pid int
	fmt.Sscanf(f.output, "child %d", &pid)
	checkAllGone(t, []int{pid})
}

func TestLocalRunnerReap(t *testing.T) {
	r, _ := testRunner(t, "tree")
	dir := t.TempDir()
	j, pids, out := startTree(t, r, dir)
	go io.Copy(io.Discard, out)
	go func() {
		for range j.Events() {
		}
	}()
	defer func() { j.Cancel(); j.Wait() }()

	// A pid file whose start time does not match is someone else's process.
	pid, start, _, err := readPidFile(filepath.Join(dir, workerPidFile))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, workerPidFile), fmt.Appendf(nil, `{"pid":%d,"start":%d}`, pid, start+1), 0o600)
	after, c := testRunner(t, "tree") // the server after a restart
	if err := after.Reap(context.Background(), 11, dir); err != nil {
		t.Fatal(err)
	}
	if !alive(pid) {
		t.Fatal("Reap killed a process whose start time differs")
	}
	// So is a process with another command line.
	sleep := exec.Command("sleep", "1000")
	sleep.Start()
	defer sleep.Process.Kill()
	writePidFile(filepath.Join(dir, workerPidFile), sleep.Process.Pid, "")
	after.Reap(context.Background(), 11, dir)
	if !alive(sleep.Process.Pid) {
		t.Fatal("Reap killed a process that is not a worker")
	}

	os.WriteFile(filepath.Join(dir, workerPidFile), fmt.Appendf(nil, `{"pid":%d,"start":%d}`, pid, start), 0o600)
	if err := after.Reap(context.Background(), 11, dir); err != nil {
		t.Fatal(err)
	}
	checkAllGone(t, append(pids, pid))
	if _, err := os.Stat(filepath.Join(dir, workerPidFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind (%v)", err)
	}
	if ids := c.get(); len(ids) != 3 || ids[2] != 11 {
		t.Errorf("cleaned up %v, want 11 each time", ids)
	}
}

// TestWorkerEnvIsAllowlisted: a worker runs code from outside (a base image,
// packages), so it gets none of the server's secrets from the environment.
func TestWorkerEnvIsAllowlisted(t *testing.T) {
	t.Setenv("IMAGEHUB_SECRET_KEY", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	t.Setenv("IMAGEHUB_ADMIN_PASSWORD", "admin-password-1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "cloud-secret")
	t.Setenv("PATH", "/usr/bin:/bin")
	env := WorkerEnv("/tmp/build-9")
	joined := strings.Join(env, "\n")
	for _, bad := range []string{"IMAGEHUB_SECRET_KEY", "IMAGEHUB_ADMIN_PASSWORD", "AWS_SECRET_ACCESS_KEY", "cloud-secret"} {
		if strings.Contains(joined, bad) {
			t.Errorf("the worker's environment holds %s:\n%s", bad, joined)
		}
	}
	for _, want := range []string{"PATH=/usr/bin:/bin", "TMPDIR=/tmp/build-9"} {
		if !slices.Contains(env, want) {
			t.Errorf("the worker's environment lacks %s:\n%s", want, joined)
		}
	}
}

// sweepingRunner is a fake runner that can sweep (Sweeper): it records
// what had been reaped when the sweep came, and whether the queue called
// the recovered build running.
type sweepingRunner struct {
	*fakeRunner
	sweeps        int
	reapedBefore  []int64
	leftIsRunning bool
	left          int64
}

func (r *sweepingRunner) Sweep(_ context.Context, running func(int64) bool) error {
	r.sweeps++
	r.reapedBefore = append([]int64(nil), r.reaped...)
	r.leftIsRunning = running(r.left)
	return nil
}

// TestQueueRecoverSweeps: a runner that can sweep is asked to, once, after
// the builds left running were reaped, and none of them counts as running.
func TestQueueRecoverSweeps(t *testing.T) {
	sw := &sweepingRunner{fakeRunner: newFakeRunner()}
	e := newQueueEnv(t, func(c *Config) { c.Runner = sw })
	ctx := context.Background()
	left := e.queueBuild(t, "left", okRecipe)
	if err := e.st.StartBuild(ctx, left.ID); err != nil {
		t.Fatal(err)
	}
	sw.left = left.ID
	if err := e.q.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if sw.sweeps != 1 || fmt.Sprint(sw.reapedBefore) != fmt.Sprint([]int64{left.ID}) || sw.leftIsRunning {
		t.Errorf("sweeps %d, reaped before %v, the left build running: %v", sw.sweeps, sw.reapedBefore, sw.leftIsRunning)
	}
}
