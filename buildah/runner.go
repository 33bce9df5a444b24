package buildah

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
	"sync/atomic"
	"syscall"
	"time"
)

// Runner is where builds run. It starts a worker for a build and, after the
// server restarts, finds what is left of the workers it started. The queue
// talks only to this interface, so that it does not matter whether a worker
// is a child process (LocalRunner) or, later, a Kubernetes Job.
type Runner interface {
	// Start starts a worker for spec. dir is the build's own folder (its log
	// lives there), where the runner may keep what it needs to find the
	// worker again. ctx bounds the start only: a started worker runs until it
	// exits or is cancelled.
	Start(ctx context.Context, spec WorkerSpec, dir string) (Job, error)
	// Reap stops whatever is left of a build's worker from before a restart
	// of the server and removes the build's working containers.
	Reap(ctx context.Context, buildID int64, dir string) error
}

// Job is one started worker.
type Job interface {
	// Output is the worker's log, its standard output and error combined. It
	// ends with io.EOF once the worker has exited.
	Output() io.Reader
	// Events delivers the worker's structured events. It is closed once the
	// worker has exited, and must be read until then.
	Events() <-chan Event
	// Cancel stops the worker and everything it started, at once, without
	// waiting: Wait does that.
	Cancel()
	// Wait waits for the worker to exit and removes what it left behind:
	// stray processes and, unless it exited successfully, its working
	// containers. It returns nil when the worker exited with status 0.
	Wait() error
}

// Names of the files a LocalRunner keeps in a build's folder, and how long it
// waits for things that should end promptly.
const (
	workerSpecFile = "worker-spec.json"
	workerPidFile  = "worker.pid"
	// outputGrace is how long a worker's output may still flow after it
	// exited (from a process that outlived it) before it is cut off.
	outputGrace = 2 * time.Second
	// killWait bounds the wait for killed processes to be gone, so that
	// their working containers are no longer in use when they are deleted.
	killWait = 5 * time.Second
)

// LocalRunner runs each build in a child process of the server: a crash or a
// kill of a worker cannot take the server down. The worker is Exe with Args
// and then "--spec FILE"; the spec file is 0600 in the build's folder, so
// that credentials never appear on a command line. The worker gets its own
// process group (and, as root, its own mount namespace), its stdout and
// stderr on one pipe, and its events as JSON lines on file descriptor 3.
type LocalRunner struct {
	// Exe is the worker executable; empty means this very program.
	Exe string
	// Args come before "--spec FILE"; nil means {"build-worker"}.
	Args []string
	// Storage is the store whose leftover working containers are removed
	// after a worker was killed or failed.
	Storage Storage

	// Cleanup removes a build's leftover working containers; nil means
	// CleanupBuild in this process. A server that is not root sets it to
	// run the clean-up in a worker process, inside the user namespace
	// where the containers' files and mounts belong.
	Cleanup func(Storage, int64) (int, error)

	// cleanup replaces CleanupBuild in tests.
	cleanup func(Storage, int64) (int, error)
}

// Start writes the spec file and starts the worker.
func (r LocalRunner) Start(ctx context.Context, spec WorkerSpec, dir string) (Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	exe, args, err := r.command()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	specPath := filepath.Join(dir, workerSpecFile)
	if err := WriteWorkerSpec(specPath, spec); err != nil {
		return nil, err
	}
	j, err := r.startProcess(exe, append(args, "--spec", specPath), spec)
	if err != nil {
		os.Remove(specPath)
		return nil, err
	}
	j.specPath, j.pidPath = specPath, filepath.Join(dir, workerPidFile)
	if err := writePidFile(j.pidPath, j.pid); err != nil {
		j.Cancel()
		go io.Copy(io.Discard, j.Output())
		go func() {
			for range j.Events() {
			}
		}()
		j.Wait()
		return nil, err
	}
	return j, nil
}

// command returns the executable and the arguments that make it a worker.
func (r LocalRunner) command() (string, []string, error) {
	args := slices.Clone(r.Args)
	if r.Args == nil {
		args = []string{"build-worker"}
	}
	if r.Exe != "" {
		return r.Exe, args, nil
	}
	exe, err := os.Executable()
	return exe, args, err
}

func (r LocalRunner) cleanupFunc() func(Storage, int64) (int, error) {
	if r.cleanup != nil {
		return r.cleanup
	}
	if r.Cleanup != nil {
		return r.Cleanup
	}
	return CleanupBuild
}

// startProcess starts the worker in its own process group, with one pipe for
// its log and one for its events.
func (r LocalRunner) startProcess(exe string, args []string, spec WorkerSpec) (*localJob, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	evR, evW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	newCmd := func(ownMounts bool) *exec.Cmd {
		cmd := exec.Command(exe, args...)
		cmd.Stdout, cmd.Stderr = outW, outW
		cmd.ExtraFiles = []*os.File{evW}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if ownMounts {
			cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
		}
		cmd.Env = workerEnv(spec.TmpDir)
		return cmd
	}
	// As root, the worker gets a mount namespace of its own (with private
	// propagation): whatever a killed worker had mounted goes away with it.
	// A rootless worker gets one when it enters its user namespace, and a
	// root without CAP_SYS_ADMIN (some containers) does without.
	cmd := newCmd(os.Geteuid() == 0)
	err = cmd.Start()
	if errors.Is(err, syscall.EPERM) && cmd.SysProcAttr.Unshareflags != 0 {
		cmd = newCmd(false)
		err = cmd.Start()
	}
	outW.Close()
	evW.Close()
	if err != nil {
		outR.Close()
		evR.Close()
		return nil, fmt.Errorf("starting the build worker: %w", err)
	}
	j := &localJob{
		cmd: cmd, pid: cmd.Process.Pid, buildID: spec.BuildID, storage: spec.Storage,
		cleanup: r.cleanupFunc(),
		out:     &jobOutput{f: outR, eof: make(chan struct{})},
		evR:     evR, events: make(chan Event, 16), evDone: make(chan struct{}),
	}
	go j.readEvents()
	return j, nil
}

// workerEnv is the server's environment with TMPDIR pointing at the build's
// own temporary folder, so that nothing the worker does spills into /tmp.
func workerEnv(tmpDir string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "TMPDIR=") })
	if tmpDir != "" {
		env = append(env, "TMPDIR="+tmpDir)
	}
	return env
}

// Reap finds the worker a previous run of the server started for a build (by
// the pid file, checked against the process's start time and command line so
// that a reused pid is never killed), kills it with everything it started,
// and removes the build's spec file and working containers.
func (r LocalRunner) Reap(ctx context.Context, buildID int64, dir string) error {
	var errs []error
	pidPath := filepath.Join(dir, workerPidFile)
	pid, start, err := readPidFile(pidPath)
	switch {
	case err == nil && r.isWorker(pid, start):
		killed := killTree(pid, func(sig syscall.Signal) error { return syscall.Kill(pid, sig) })
		waitGone(ctx, killed)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		errs = append(errs, err)
	}
	for _, name := range []string{workerPidFile, workerSpecFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if _, err := r.cleanupFunc()(r.Storage, buildID); err != nil {
		errs = append(errs, fmt.Errorf("removing the working containers of build %d: %w", buildID, err))
	}
	return errors.Join(errs...)
}

// isWorker reports whether pid is still the worker recorded in a pid file:
// the same start time, and a command line with this runner's worker
// arguments.
func (r LocalRunner) isWorker(pid int, start uint64) bool {
	st, err := readProcStat(pid)
	if err != nil || st.start != start || st.state == 'Z' {
		return false
	}
	_, args, _ := r.command()
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	return len(argv) > len(args) && slices.Equal(argv[1:1+len(args)], args) && slices.Contains(argv, "--spec")
}

// localJob is a worker running as a child process.
type localJob struct {
	cmd               *exec.Cmd
	pid               int
	buildID           int64
	storage           Storage
	specPath, pidPath string
	cleanup           func(Storage, int64) (int, error)
	out               *jobOutput
	evR               *os.File
	events            chan Event
	evDone            chan struct{} // closed when readEvents is done

	mu        sync.Mutex
	exited    bool  // reaped: its pid may belong to someone else now
	cancelled bool  // Cancel was called
	killed    []int // processes Cancel killed

	waitOnce sync.Once
	waitErr  error
}

func (j *localJob) Output() io.Reader    { return j.out }
func (j *localJob) Events() <-chan Event { return j.events }

// Cancel kills the worker and all its descendants.
func (j *localJob) Cancel() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cancelled = true
	if j.exited {
		return
	}
	signalRoot := func(sig syscall.Signal) error { return j.cmd.Process.Signal(sig) }
	j.killed = append(j.killed, killTree(j.pid, signalRoot)...)
}

// Wait waits for the worker, then cleans up after it.
func (j *localJob) Wait() error {
	j.waitOnce.Do(func() { j.waitErr = j.wait() })
	return j.waitErr
}

func (j *localJob) wait() error {
	err := j.cmd.Wait()
	j.mu.Lock()
	j.exited = true
	cancelled, killed := j.cancelled, j.killed
	j.mu.Unlock()
	// Whatever is left of the worker's process group has no business to
	// outlive it (the group is still reserved while any member lives).
	syscall.Kill(-j.pid, syscall.SIGKILL)
	j.drain()
	for _, p := range []string{j.specPath, j.pidPath} {
		if p != "" {
			os.Remove(p)
		}
	}
	if err == nil && !cancelled {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	waitGone(ctx, killed)
	if _, cerr := j.cleanup(j.storage, j.buildID); cerr != nil {
		return errors.Join(err, fmt.Errorf("removing the build's working containers: %w", cerr))
	}
	return err
}

// drain waits for the output and the events to reach their end, cutting them
// off after outputGrace (a process that outlived the worker may still hold
// the pipes), and closes both. Events already in the pipe are never lost: the
// event pipe is only cut when it did not end by itself.
func (j *localJob) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), outputGrace)
	defer cancel()
	select {
	case <-j.out.eof:
	case <-ctx.Done():
	}
	j.out.cut()
	select {
	case <-j.evDone:
	case <-ctx.Done():
		j.evR.Close()
		<-j.evDone
	}
}

// readEvents decodes the worker's JSON lines into Events. A line that is not
// an event is skipped: the worker's log is elsewhere.
func (j *localJob) readEvents() {
	defer close(j.evDone)
	defer j.evR.Close()
	defer close(j.events)
	sc := bufio.NewScanner(j.evR)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var ev Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			j.events <- ev
		}
	}
}

// jobOutput is the read end of a worker's log pipe. It tells drain when its
// reader reached the end, and turns a cut-off into a plain end of file.
type jobOutput struct {
	f    *os.File
	eof  chan struct{}
	once sync.Once
	done atomic.Bool
}

func (o *jobOutput) Read(p []byte) (int, error) {
	n, err := o.f.Read(p)
	if err != nil {
		o.once.Do(func() { close(o.eof) })
		if o.done.Load() {
			err = io.EOF
		}
	}
	return n, err
}

// cut closes the pipe; a reader still waiting on it gets io.EOF.
func (o *jobOutput) cut() {
	o.done.Store(true)
	o.f.Close()
}

// killTree kills root, its process group and every descendant of root, also
// those that left the group or the session (a RUN step's processes do, and
// may live in other namespaces). Everything is stopped first, round after
// round until no new descendant appears, so that nothing can fork away while
// the tree is being walked; then everything is killed. It returns the pids
// it signalled.
func killTree(root int, signalRoot func(syscall.Signal) error) []int {
	signalRoot(syscall.SIGSTOP)
	syscall.Kill(-root, syscall.SIGSTOP)
	stopped := map[int]bool{}
	for range 50 {
		fresh := 0
		for _, pid := range descendants(root) {
			if !stopped[pid] {
				stopped[pid] = true
				syscall.Kill(pid, syscall.SIGSTOP)
				fresh++
			}
		}
		if fresh == 0 {
			break
		}
	}
	syscall.Kill(-root, syscall.SIGKILL)
	signalRoot(syscall.SIGKILL)
	pids := []int{root}
	for pid := range stopped {
		syscall.Kill(pid, syscall.SIGKILL)
		pids = append(pids, pid)
	}
	return pids
}

// descendants lists every process whose chain of parents leads to root.
func descendants(root int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	var out []int
	queue := children[root]
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out
}

// waitGone waits until none of pids is alive (a zombie counts as gone), or
// until ctx ends.
func waitGone(ctx context.Context, pids []int) {
	for {
		alive := slices.ContainsFunc(pids, func(pid int) bool {
			st, err := readProcStat(pid)
			return err == nil && st.state != 'Z'
		})
		if !alive {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// procStat is what this file needs of /proc/PID/stat.
type procStat struct {
	state byte
	ppid  int
	start uint64 // clock ticks after boot: with the pid, names one process
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after its closing parenthesis are plain.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procStat{}, err
	}
	return procStat{state: f[0][0], ppid: ppid, start: start}, nil
}

// writePidFile records a worker's pid and start time.
func writePidFile(path string, pid int) error {
	st, err := readProcStat(pid)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(fmt.Sprintf("%d %d\n", pid, st.start)), 0o600)
}

func readPidFile(path string) (pid int, start uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscan(string(b), &pid, &start); err != nil {
		return 0, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return pid, start, nil
}
