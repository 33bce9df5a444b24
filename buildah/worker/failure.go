package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"imagehub/buildah/workerspec"
)

// This file turns what went wrong into the one-line reason a build records,
// from buildah's error and the last line the failed step printed.

// errCancelled is the reason of a build stopped by its context.
var errCancelled = errors.New("the build was cancelled")

// buildError is the one-line reason of a failed build. For a failed step of
// the Containerfile it names the step ("the pip step"), buildah's cause
// ("exit status 1") and the last line the step printed: the generated
// Containerfile makes that line say what is missing ("the base image has no
// pip"), and a package manager's last line is usually its complaint.
func buildError(err error, containerfile, lastLine string) error {
	if errors.Is(err, context.Canceled) {
		return errCancelled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("the build ran past its deadline")
	}
	msg := err.Error()
	for _, line := range strings.Split(containerfile, "\n") {
		marker := `building at STEP "` + line + `": `
		if i := strings.Index(msg, marker); line != "" && i >= 0 {
			cause, _, _ := strings.Cut(msg[i+len(marker):], ": subprocess exited")
			// Under runc the cause reads "while running runtime: exit status 1".
			cause = strings.TrimPrefix(cause, "while running runtime: ")
			msg = fmt.Sprintf("%s failed (%s)", stepName(line), cause)
			break
		}
	}
	if lastLine != "" {
		msg += ": " + lastLine
	}
	return errors.New(workerspec.Reason(errors.New(msg)))
}

// stepName names a Containerfile line for a person: the package manager a
// RUN line runs, or the line itself, shortened.
func stepName(line string) string {
	fixed, _, _ := strings.Cut(line, "'") // the packages are the quoted part
	for _, m := range []struct{ command, name string }{
		{"apt-get install", "APT"}, {"conda install", "conda"}, {"pip install", "pip"},
	} {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(fixed, m.command) {
			return "the " + m.name + " step"
		}
	}
	if len(line) > 60 {
		line = line[:60] + "…"
	}
	return fmt.Sprintf("step %q", line)
}

// syncWriter serialises writes: buildah writes step output, errors and
// progress reports from several goroutines to the same log.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// tailWriter passes everything through to a log and remembers the last
// complete line a build step printed, which names the cause when it fails.
type tailWriter struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
	last    string
}

func newTailWriter(w io.Writer) *tailWriter { return &tailWriter{w: w} }

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(t.partial[:i])); !isBuildahNoise(line) {
			t.last = line
		}
		t.partial = t.partial[i+1:]
	}
	return t.w.Write(p)
}

// buildahNoise matches the lines buildah itself writes around a step's
// output, which say nothing about why the step failed.
var buildahNoise = regexp.MustCompile(`^$|^subprocess exited with status \d+$|^STEP \d+/\d+: |^--> |^time="|^error building at STEP `)

// isBuildahNoise reports whether a log line is buildah's own.
func isBuildahNoise(line string) bool {
	return buildahNoise.MatchString(line)
}

// lastLine is the last complete line written that buildah did not write
// itself.
func (t *tailWriter) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}
