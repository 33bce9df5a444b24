package worker

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// stepLog prints buildah's progress messages as buildah itself does
// ("STEP 2/5: USER 0", "COMMIT name") and calls beforeRun before each
// RUN step. buildah calls its log method (define.BuildOptions.Log) from
// the build's goroutine before it looks a step up in the layer cache or
// runs it, so a RUN step cannot start before beforeRun has returned.
type stepLog struct {
	mu        sync.Mutex
	out       io.Writer
	total     int // instructions in the Containerfile
	n         int // steps logged so far
	beforeRun func()
}

// newStepLog is the step log of a build of containerfile, whose messages
// go to out.
func newStepLog(out io.Writer, containerfile string, beforeRun func()) *stepLog {
	return &stepLog{out: out, total: countInstructions(containerfile), beforeRun: beforeRun}
}

// log is buildah's define.BuildOptions.Log.
func (l *stepLog) log(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.HasPrefix(format, "COMMIT") {
		fmt.Fprintf(l.out, format+"\n", args...)
		return
	}
	l.n++
	prefix := fmt.Sprintf("STEP %d", l.n)
	if l.n <= l.total {
		prefix += fmt.Sprintf("/%d", l.total)
	}
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(l.out, "%s: %s\n", prefix, msg)
	if word, _, _ := strings.Cut(msg, " "); strings.EqualFold(word, "RUN") {
		l.beforeRun()
	}
}

// countInstructions counts the instructions of a Containerfile written one
// to a line, as recipe.Containerfile writes them.
func countInstructions(containerfile string) int {
	n := 0
	for _, line := range strings.Split(containerfile, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}
