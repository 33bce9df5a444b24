package buildlog

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"unicode/utf8"
)

// lineWriter splits what is written to it into lines of a build's log.
type lineWriter struct {
	hub *Hub
	log *buildLog

	mu      sync.Mutex
	partial []byte
	closed  bool
}

// Write appends every complete line in p (and in what came before it) to the
// log, and keeps the rest for later.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	w.partial = append(w.partial, p...)
	lines := w.takeLines()
	if len(lines) == 0 {
		return len(p), nil
	}
	if err := w.log.append(lines); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes the partial last line, if any, and lets the log go.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if len(w.partial) > 0 {
		err = w.log.append([]string{cleanLine(w.partial)})
		w.partial = nil
	}
	err = errors.Join(err, w.log.closeWriter())
	w.hub.release(w.log)
	return err
}

// takeLines removes the complete lines from the front of w.partial, cutting
// any line longer than MaxLineBytes.
func (w *lineWriter) takeLines() []string {
	var lines []string
	rest := w.partial
	for {
		i := bytes.IndexByte(rest, '\n')
		if i >= 0 && i <= MaxLineBytes {
			lines = append(lines, cleanLine(rest[:i]))
			rest = rest[i+1:]
			continue
		}
		if len(rest) <= MaxLineBytes {
			break
		}
		cut := runeCut(rest, MaxLineBytes)
		lines = append(lines, cleanLine(rest[:cut]))
		rest = rest[cut:]
	}
	w.partial = w.partial[:copy(w.partial, rest)]
	return lines
}

// cleanLine turns raw bytes into a line's text, without the carriage return
// of a CRLF line end.
func cleanLine(b []byte) string {
	return string(bytes.TrimSuffix(b, []byte{'\r'}))
}

// runeCut returns where to cut b so that the first part is at most n bytes
// and no UTF-8 character is split.
func runeCut(b []byte, n int) int {
	for cut := n; cut > n-utf8.UTFMax && cut > 0; cut-- {
		if utf8.RuneStart(b[cut]) {
			return cut
		}
	}
	return n
}
