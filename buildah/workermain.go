package buildah

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// eventFD is the file descriptor on which a worker sends its events: the
// first of exec.Cmd.ExtraFiles in the runner.
const eventFD = 3

// WorkerMain is the whole of `imagehub build-worker --spec FILE`: it reads
// (and deletes) the spec file, builds and pushes, writes the log to standard
// output and the events as JSON lines to file descriptor 3, and returns the
// process's exit status. A failure is reported as a done event with a
// one-line reason, since that, not the log, is what the server records.
func WorkerMain(ctx context.Context, specPath string) int {
	return workerMain(ctx, specPath, os.Stdout, openEventSink(), RunWorker)
}

// workerFunc is the signature of RunWorker, replaceable in tests.
type workerFunc func(ctx context.Context, spec WorkerSpec, log io.Writer, events func(Event)) error

func workerMain(ctx context.Context, specPath string, log io.Writer, sink *eventSink, run workerFunc) int {
	spec, err := ReadWorkerSpec(specPath)
	if err == nil {
		err = run(ctx, spec, log, sink.send)
	}
	if err == nil {
		return 0
	}
	sink.send(Event{Phase: PhaseDone, Error: oneLine(err)})
	return 1
}

// eventSink writes events as JSON lines, one whole line per write, from any
// goroutine.
type eventSink struct {
	mu sync.Mutex
	w  io.Writer
}

// openEventSink opens file descriptor 3. It is marked close-on-exec at once:
// buildah starts helper processes and RUN steps, and none of them may hold
// the event pipe open after the worker is gone. Run by hand without fd 3, the
// worker writes its events to standard error instead.
//
// A rootless worker re-executes itself inside a user namespace, and that
// re-execution hands its own pipes to the child as fds 3 and 4; it therefore
// moves the event pipe first and names its new number in EventFDEnv.
func openEventSink() *eventSink {
	fd := eventFD
	if n, err := strconv.Atoi(os.Getenv(EventFDEnv)); err == nil && n > 2 {
		fd = n
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return &eventSink{w: os.Stderr}
	}
	syscall.CloseOnExec(fd)
	return &eventSink{w: os.NewFile(uintptr(fd), "events")}
}

// EventFDEnv names the environment variable that, when set, holds the file
// descriptor of the event pipe instead of 3.
const EventFDEnv = "IMAGEHUB_EVENTS_FD"

// MoveEventFD moves the event pipe from fd 3 to fd to, out of the way of a
// re-execution that passes its own files as fds 3 and up, and records the
// move in EventFDEnv for the worker that follows.
func MoveEventFD(to int) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(eventFD, &st); err != nil {
		return nil // no event pipe: run by hand
	}
	if err := syscall.Dup2(eventFD, to); err != nil {
		return err
	}
	return os.Setenv(EventFDEnv, strconv.Itoa(to))
}

func (s *eventSink) send(ev Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(append(b, '\n')); err != nil {
		fmt.Fprintf(os.Stderr, "imagehub: cannot send event %s: %v\n", b, err)
	}
}
