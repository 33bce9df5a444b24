package buildlog

import (
	"bytes"
	"errors"
	"io"
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

// Abandon lets the log go like Close, but drops the partial last line: the
// writer of a build whose worker goes on without this server stops in the
// middle of a line, and the server that follows the build again writes that
// line whole (SkipLines).
func (w *lineWriter) Abandon() error {
	w.mu.Lock()
	w.partial = nil
	w.mu.Unlock()
	return w.Close()
}

// takeLines removes the complete lines from the front of w.partial, cutting
// any line longer than MaxLineBytes.
func (w *lineWriter) takeLines() []string {
	var lines []string
	rest := w.partial
	for {
		end, next := lineEnd(rest)
		if next == 0 {
			break
		}
		lines = append(lines, cleanLine(rest[:end]))
		rest = rest[next:]
	}
	w.partial = w.partial[:copy(w.partial, rest)]
	return lines
}

// lineEnd finds the first line of a log in b, the one rule of where a line
// ends: at its newline, or after MaxLineBytes of a longer line. end is the
// line's length without its newline, next where the following line begins;
// next is 0 while b holds no complete line.
func lineEnd(b []byte) (end, next int) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 && i <= MaxLineBytes {
		return i, i + 1
	}
	if len(b) <= MaxLineBytes {
		return 0, 0
	}
	cut := runeCut(b, MaxLineBytes)
	return cut, cut
}

// SkipLines returns a writer that drops the first n lines written to it,
// cut as a build's log cuts them, and passes everything after them to w. A
// build followed again after a restart of the server gets its worker's
// output from the start; this leaves out the lines its log holds already.
func SkipLines(w io.Writer, n int64) io.Writer {
	return &lineSkipper{w: w, left: n}
}

type lineSkipper struct {
	w       io.Writer
	left    int64
	partial []byte // the start of a line still to skip
}

func (s *lineSkipper) Write(p []byte) (int, error) {
	if s.left == 0 {
		return s.w.Write(p)
	}
	s.partial = append(s.partial, p...)
	for s.left > 0 {
		_, next := lineEnd(s.partial)
		if next == 0 {
			return len(p), nil
		}
		s.partial, s.left = s.partial[next:], s.left-1
	}
	rest := s.partial
	s.partial = nil
	if len(rest) > 0 {
		if _, err := s.w.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(p), nil
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
