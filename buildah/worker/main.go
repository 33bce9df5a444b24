package worker

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"

	"go.podman.io/storage/pkg/unshare"

	"imagehub/buildah/mounts"
	"imagehub/buildah/workerspec"
)

// eventFDAfterReexec is where a rootless worker keeps its event pipe across
// its re-execution into a user namespace (see moveEventFD).
const eventFDAfterReexec = 64

// Command is the whole of `imagehub build-worker`: with --spec FILE, one
// build (Main); with --cleanup ID, the removal of a build's leftover working
// containers, whose result it prints as one JSON line (workerspec.CleanupResult);
// with --clean-cache or --cache-usage, the clean-up or the measure of the
// layer cache (CleanCache, CacheUsage), whose result it prints as one JSON
// line (workerspec.CacheResult).
// Each runs in a process of its own, so that a crash or a kill cannot take
// the server down, and, when not root, inside a user namespace mapped from
// /etc/subuid and /etc/subgid, where buildah may run containers and own files of
// other uids. It returns the process's exit status.
func Command(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("build-worker", flag.ContinueOnError)
	spec := fs.String("spec", "", "the 0600 spec file written by the server (read, then deleted)")
	cleanup := fs.Int64("cleanup", 0, "instead of building, remove the leftover working containers of this build")
	cleanCache := fs.Bool("clean-cache", false, "instead of building, clean the layer cache up (--cache-size, --keep-recent, --remove-repo)")
	cacheUsage := fs.Bool("cache-usage", false, "instead of building, measure the layer cache")
	inPod := fs.Bool("in-pod", false, "a build in a Kubernetes pod (PodMain): the spec file stays (a Secret's), the store is --graph-root, --run-root and --driver, the temporary folder --tmp-dir, and the events are lines of the log")
	var stg workerspec.Storage
	fs.StringVar(&stg.GraphRoot, "graph-root", "", "storage graph root (with --cleanup and the cache modes)")
	fs.StringVar(&stg.RunRoot, "run-root", "", "storage run root (with --cleanup and the cache modes)")
	fs.StringVar(&stg.Driver, "driver", "", "storage driver (with --cleanup and the cache modes)")
	tmpDir := fs.String("tmp-dir", "", "the build's temporary folder, removed too (with --cleanup; with --in-pod: where the build works)")
	var cc workerspec.CacheCleanup
	fs.Int64Var(&cc.Limit, "cache-size", 0, "bytes the layer cache may take; 0: no limit (with --clean-cache)")
	fs.DurationVar(&cc.KeepRecent, "keep-recent", 0, "images used this recently stay (with --clean-cache)")
	fs.Func("remove-repo", "remove the images of this repository, HOST/PATH/NAME; repeatable (with --clean-cache)", func(v string) error {
		cc.RemoveRepositories = append(cc.RemoveRepositories, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *cleanup > 0:
		unshare.MaybeReexecUsingUserNamespace(false)
		return printResult(func() (any, error) {
			n, err := CleanupBuild(stg, *cleanup)
			if err == nil && *tmpDir != "" {
				err = mounts.RemoveAll(*tmpDir)
			}
			return workerspec.CleanupResult{Removed: n}, err
		})
	case *cleanCache:
		unshare.MaybeReexecUsingUserNamespace(false)
		return printResult(func() (any, error) { return CleanCache(stg, cc) })
	case *cacheUsage:
		unshare.MaybeReexecUsingUserNamespace(false)
		return printResult(func() (any, error) { return CacheUsage(stg) })
	case *spec == "":
		fmt.Fprintln(os.Stderr, "build-worker needs --spec, --cleanup, --clean-cache or --cache-usage")
		return 2
	case *inPod:
		unshare.MaybeReexecUsingUserNamespace(false)
		return PodMain(ctx, *spec, stg, *tmpDir)
	}
	if os.Geteuid() != 0 {
		if err := moveEventFD(eventFDAfterReexec); err != nil {
			fmt.Fprintf(os.Stderr, "move the event pipe: %v\n", err)
			return 1
		}
	}
	unshare.MaybeReexecUsingUserNamespace(false) // a no-op as root
	return Main(ctx, *spec)
}

// printResult runs one of the worker's side jobs and prints its result as
// one JSON line, or its error on standard error; it returns the exit status.
func printResult(job func() (any, error)) int {
	res, err := job()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// Main is one build: it reads (and deletes) the spec file, builds and pushes,
// writes the log to standard output and the events as JSON lines to
// workerspec.EventFD, and returns the process's exit status. A failure is
// reported as a done event with a one-line reason, since that, not the log,
// is what the server records.
func Main(ctx context.Context, specPath string) int {
	return workerMain(ctx, specPath, os.Stdout, openEventSink(), Run)
}

// workerFunc is the signature of Run, replaceable in tests.
type workerFunc func(ctx context.Context, spec workerspec.Spec, log io.Writer, events func(workerspec.Event)) error

func workerMain(ctx context.Context, specPath string, log io.Writer, sink *eventSink, run workerFunc) int {
	spec, err := workerspec.Read(specPath)
	return runSpec(ctx, spec, err, log, sink, run)
}

// PodMain is one build in a Kubernetes pod (the Kubernetes runner's Job):
// the spec file is a file of the build's Secret on a read-only volume, which
// goes with the Job, so it is read and left; the store and the temporary
// folder are the pod's own (its volumes), whatever the spec says; and the
// events are lines of the log marked with the spec's event token
// (workerspec.LogEventLine), since the log is all the server follows.
func PodMain(ctx context.Context, specPath string, st workerspec.Storage, tmpDir string) int {
	return podMain(ctx, specPath, st, tmpDir, os.Stdout, Run)
}

func podMain(ctx context.Context, specPath string, st workerspec.Storage, tmpDir string, log io.Writer, run workerFunc) int {
	spec, err := workerspec.Load(specPath)
	if err == nil && spec.EventToken == "" {
		err = errors.New("the worker spec has no event token, which a worker in a pod needs")
	}
	if err == nil {
		spec.Storage, spec.TmpDir = st, tmpDir
		err = os.MkdirAll(tmpDir, 0o700)
	}
	return runSpec(ctx, spec, err, log, &eventSink{w: log, token: spec.EventToken}, run)
}

// runSpec runs a build from spec, unless reading it failed with err, and
// reports a failure as a done event.
func runSpec(ctx context.Context, spec workerspec.Spec, err error, log io.Writer, sink *eventSink, run workerFunc) int {
	if err == nil {
		err = run(ctx, spec, log, sink.send)
	}
	if err == nil {
		return 0
	}
	sink.send(workerspec.Event{Phase: workerspec.PhaseDone, Error: workerspec.Reason(err)})
	return 1
}

// eventSink writes events as JSON lines, one whole line per write, from any
// goroutine; with a token, as event lines of the log (workerspec.LogEventLine).
type eventSink struct {
	mu    sync.Mutex
	w     io.Writer
	token string
}

// openEventSink opens file descriptor 3. It is marked close-on-exec at once:
// buildah starts helper processes and RUN steps, and none of them may hold
// the event pipe open after the worker is gone. Run by hand without fd 3, the
// worker writes its events to standard error instead.
//
// A rootless worker re-executes itself inside a user namespace, and that
// re-execution hands its own pipes to the child as fds 3 and 4; it therefore
// moves the event pipe first and names its new number in workerspec.EventFDEnv.
func openEventSink() *eventSink {
	fd := workerspec.EventFD
	if n, err := strconv.Atoi(os.Getenv(workerspec.EventFDEnv)); err == nil && n > 2 {
		fd = n
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return &eventSink{w: os.Stderr}
	}
	syscall.CloseOnExec(fd)
	return &eventSink{w: os.NewFile(uintptr(fd), "events")}
}

// moveEventFD moves the event pipe from fd 3 to fd to, out of the way of a
// re-execution that passes its own files as fds 3 and up, and records the
// move in workerspec.EventFDEnv for the worker that follows.
func moveEventFD(to int) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(workerspec.EventFD, &st); err != nil {
		return nil // no event pipe: run by hand
	}
	if err := syscall.Dup2(workerspec.EventFD, to); err != nil {
		return err
	}
	return os.Setenv(workerspec.EventFDEnv, strconv.Itoa(to))
}

func (s *eventSink) send(ev workerspec.Event) {
	b, err := json.Marshal(ev)
	if s.token != "" {
		b, err = workerspec.LogEventLine(s.token, ev)
		b = b[:len(b)-1] // the newline comes below
	}
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(append(b, '\n')); err != nil {
		fmt.Fprintf(os.Stderr, "imagehub: cannot send event %s: %v\n", b, err)
	}
}
