package queue

import (
	"bufio"
	"bytes"
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

	"imagehub/buildah/workerspec"
)

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
	Storage workerspec.Storage
	// Env holds NAME=value pairs added to a worker's environment, which is
	// otherwise WorkerEnv's.
	Env []string

	// cleanup replaces removeContainers in tests.
	cleanup func(workerspec.Storage, int64, string) (int, error)
}

// Start writes the spec file and starts the worker.
func (r LocalRunner) Start(ctx context.Context, spec workerspec.Spec, dir string) (Job, error) {
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
	if err := workerspec.Write(specPath, spec); err != nil {
		return nil, err
	}
	j, err := r.startProcess(exe, append(args, "--spec", specPath), spec)
	if err != nil {
		os.Remove(specPath)
		return nil, err
	}
	j.specPath, j.pidPath = specPath, filepath.Join(dir, workerPidFile)
	if err := writePidFile(j.pidPath, j.pid, spec.TmpDir); err != nil {
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

func (r LocalRunner) cleanupFunc() func(workerspec.Storage, int64, string) (int, error) {
	if r.cleanup != nil {
		return r.cleanup
	}
	return r.removeContainers
}

// removeContainers deletes a build's leftover working containers by running
// the worker executable with --cleanup: a process of its own that enters the
// user namespace where the containers' files and mounts belong (a server that
// is not root could not unmount them), and the only part of imagehub that
// opens the store. It returns how many containers were removed.
//
// A non-empty tmpDir, the build's temporary folder, is removed there too: a
// killed rootless worker leaves files in it that belong to its subordinate
// ids, which only that user namespace may delete.
func (r LocalRunner) removeContainers(st workerspec.Storage, buildID int64, tmpDir string) (int, error) {
	var res workerspec.CleanupResult
	err := r.sideJob(context.Background(), st, &res, "--cleanup", strconv.FormatInt(buildID, 10), "--tmp-dir", tmpDir)
	return res.Removed, err
}

// CleanCache cleans the layer cache up with `build-worker --clean-cache`
// (see worker.CleanCache), in a process of its own for the same reasons as
// removeContainers.
func (r LocalRunner) CleanCache(ctx context.Context, st workerspec.Storage, c workerspec.CacheCleanup) (workerspec.CacheResult, error) {
	args := []string{"--clean-cache", "--cache-size", strconv.FormatInt(c.Limit, 10), "--keep-recent", c.KeepRecent.String()}
	for _, repo := range c.RemoveRepositories {
		args = append(args, "--remove-repo", repo)
	}
	var res workerspec.CacheResult
	err := r.sideJob(ctx, st, &res, args...)
	return res, err
}

// CacheUsage measures the layer cache with `build-worker --cache-usage`.
func (r LocalRunner) CacheUsage(ctx context.Context, st workerspec.Storage) (workerspec.CacheResult, error) {
	var res workerspec.CacheResult
	err := r.sideJob(ctx, st, &res, "--cache-usage")
	return res, err
}

// sideJob runs the worker executable on the store st with args, for work
// other than a build, and decodes the JSON line it prints last into res.
func (r LocalRunner) sideJob(ctx context.Context, st workerspec.Storage, res any, args ...string) error {
	exe, base, err := r.command()
	if err != nil {
		return err
	}
	args = append(append(base, "--graph-root", st.GraphRoot, "--run-root", st.RunRoot, "--driver", st.Driver), args...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(WorkerEnv(""), r.Env...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(finalLine(out), res); err != nil {
		return fmt.Errorf("reading the worker's result %q: %w", out, err)
	}
	return nil
}

// finalLine returns the last non-empty line of out.
func finalLine(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return lines[len(lines)-1]
}

// startProcess starts the worker in its own process group, with one pipe for
// its log and one for its events.
func (r LocalRunner) startProcess(exe string, args []string, spec workerspec.Spec) (*localJob, error) {
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
		cmd.Env = append(WorkerEnv(spec.TmpDir), r.Env...)
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
		cmd: cmd, pid: cmd.Process.Pid, buildID: spec.BuildID, storage: spec.Storage, tmpDir: spec.TmpDir,
		cleanup: r.cleanupFunc(),
		out:     &jobOutput{f: outR, eof: make(chan struct{})},
		evR:     evR, events: make(chan workerspec.Event, 16), evDone: make(chan struct{}),
	}
	go j.readEvents()
	return j, nil
}

// workerEnvAllowed are the variables of the server's environment a worker
// keeps: what finding programs, the locale and the runtime folder need.
// Nothing else passes (IMAGEHUB_SECRET_KEY and IMAGEHUB_ADMIN_PASSWORD
// least of all).
var workerEnvAllowed = []string{"PATH", "HOME", "LANG", "LC_ALL", "XDG_RUNTIME_DIR"}

// WorkerEnv is the environment a worker starts with: the allowed variables
// of the server's environment, and TMPDIR pointing at the build's own
// temporary folder, so that nothing the worker does spills into /tmp.
func WorkerEnv(tmpDir string) []string {
	var env []string
	for _, name := range workerEnvAllowed {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
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
	pid, start, tmpDir, err := readPidFile(pidPath)
	switch {
	case err == nil && r.isWorker(pid, start):
		killed := KillTree(pid, func(sig syscall.Signal) error { return syscall.Kill(pid, sig) })
		waitGone(ctx, killed)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		errs = append(errs, err)
	}
	for _, name := range []string{workerPidFile, workerSpecFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if _, err := r.cleanupFunc()(r.Storage, buildID, tmpDir); err != nil {
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
	storage           workerspec.Storage
	specPath, pidPath string
	tmpDir            string
	cleanup           func(workerspec.Storage, int64, string) (int, error)
	out               *jobOutput
	evR               *os.File
	events            chan workerspec.Event
	evDone            chan struct{} // closed when readEvents is done

	mu        sync.Mutex
	exited    bool  // reaped: its pid may belong to someone else now
	cancelled bool  // Cancel was called
	killed    []int // processes Cancel killed

	waitOnce sync.Once
	waitErr  error
}

func (j *localJob) Output() io.Reader               { return j.out }
func (j *localJob) Events() <-chan workerspec.Event { return j.events }

// Cancel kills the worker and all its descendants.
func (j *localJob) Cancel() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cancelled = true
	if j.exited {
		return
	}
	signalRoot := func(sig syscall.Signal) error { return j.cmd.Process.Signal(sig) }
	j.killed = append(j.killed, KillTree(j.pid, signalRoot)...)
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
	if _, cerr := j.cleanup(j.storage, j.buildID, j.tmpDir); cerr != nil {
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
	sc.Buffer(make([]byte, 0, 64<<10), workerspec.MaxEventLine)
	for sc.Scan() {
		var ev workerspec.Event
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
