package worker

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"sync"

	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// stepWatcher passes a build's output on and sends a workerspec.PhaseStep
// event for each step of the Containerfile that begins: each of buildah's
// "STEP n/m: " lines. buildah has no hook for its steps; it writes these
// lines to the same writer as the RUN steps' own output, so a RUN step could
// print one. The watcher takes only the step after the last one, of the
// count it saw first: a RUN step that prints such lines moves its build's
// progress ahead, never back and never past the last step.
type stepWatcher struct {
	mu     sync.Mutex
	w      io.Writer
	events func(workerspec.Event)
	// head is the beginning of the line being written, up to stepHeadMax
	// bytes: all that a step line is matched on.
	head        []byte
	step, steps int
}

// stepHeadMax is how much of a line's beginning stepLine needs.
const stepHeadMax = 32

// stepLine is the beginning of buildah's line for a step (a single-stage
// Containerfile: no "[1/2] " before it).
var stepLine = regexp.MustCompile(`^STEP (\d{1,4})/(\d{1,4}): `)

func newStepWatcher(w io.Writer, events func(workerspec.Event)) *stepWatcher {
	return &stepWatcher{w: w, events: events, head: make([]byte, 0, stepHeadMax)}
}

func (s *stepWatcher) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		part := rest
		if i >= 0 {
			part = rest[:i]
		}
		s.head = append(s.head, part[:min(len(part), stepHeadMax-len(s.head))]...)
		if i < 0 {
			break
		}
		s.line()
		s.head = s.head[:0]
		rest = rest[i+1:]
	}
	return s.w.Write(p)
}

// line sends the step event of the line whose beginning is head, if it is
// the next step.
func (s *stepWatcher) line() {
	m := stepLine.FindSubmatch(s.head)
	if m == nil {
		return
	}
	step, _ := strconv.Atoi(string(m[1]))
	steps, _ := strconv.Atoi(string(m[2]))
	if step != s.step+1 || step > steps || steps > store.MaxBuildSteps || (s.steps != 0 && steps != s.steps) {
		return
	}
	s.step, s.steps = step, steps
	s.events(workerspec.Event{Phase: workerspec.PhaseStep, Step: step, Steps: steps})
}
