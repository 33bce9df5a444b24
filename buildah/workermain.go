package buildah

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
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
func openEventSink() *eventSink {
	var st syscall.Stat_t
	if err := syscall.Fstat(eventFD, &st); err != nil {
		return &eventSink{w: os.Stderr}
	}
	syscall.CloseOnExec(eventFD)
	return &eventSink{w: os.NewFile(eventFD, "events")}
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
