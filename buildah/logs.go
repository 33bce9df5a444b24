package buildah

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"imagehub/store"
)

// This file keeps the build logs. A build's log is a file, data/builds/<id>/
// build.log, with one line per log line; a line's id is its 1-based line
// number, so a viewer that reconnects with the id of the last line it saw can
// be given exactly the lines after it, from the file, and then the live ones.
// Live lines are fanned out to the viewers of a build through bounded buffers:
// a writer never waits for a viewer, and a viewer that falls too far behind is
// dropped (it reconnects and reads what it missed from the file).

const (
	// DefaultBufferLines is how many lines a live viewer may fall behind
	// before it is dropped, unless LogHub.BufferLines says otherwise.
	DefaultBufferLines = 1024
	// MaxLineBytes is the longest line a log keeps; a longer one (a progress
	// bar that never ends its line, say) is cut into several lines so that a
	// single line can neither exhaust memory nor stall a viewer.
	MaxLineBytes = 64 << 10

	logFileName    = "build.log"
	statusFileName = "build.status"
)

// LogHub keeps the logs of all builds: it appends lines to each build's log
// file and fans them out live to that build's viewers. It is safe for
// concurrent use.
type LogHub struct {
	dir string
	// BufferLines is how many lines a viewer may fall behind before it is
	// dropped; zero means DefaultBufferLines. Set it before the hub is used.
	BufferLines int

	mu sync.Mutex
	// logs holds the builds that have an open writer or a live viewer;
	// everything else lives only in files.
	logs map[int64]*buildLog
}

// NewLogHub returns a hub that keeps each build's log under dir/<id>/.
func NewLogHub(dir string) *LogHub {
	return &LogHub{dir: dir, logs: map[int64]*buildLog{}}
}

// Line is one line of a build's log. ID is its 1-based line number: the
// Last-Event-ID a viewer sends back to resume after it.
type Line struct {
	ID   int64
	Text string
}

// Dir returns the folder that belongs to one build: its log is kept there,
// and a runner may keep there what it needs to find the build's worker again.
func (h *LogHub) Dir(id int64) string {
	return filepath.Join(h.dir, strconv.FormatInt(id, 10))
}

func (h *LogHub) logPath(id int64) string    { return filepath.Join(h.Dir(id), logFileName) }
func (h *LogHub) statusPath(id int64) string { return filepath.Join(h.Dir(id), statusFileName) }

func (h *LogHub) bufferLines() int {
	if h.BufferLines > 0 {
		return h.BufferLines
	}
	return DefaultBufferLines
}

// Writer returns a writer that appends to a build's log. It splits whatever is
// written into lines: a partial last line waits for its newline (or for Close),
// and a line longer than MaxLineBytes is cut into several. Several writers may
// be open at once; each keeps its own partial line.
func (h *LogHub) Writer(id int64) (io.WriteCloser, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.liveLog(id)
	if err != nil {
		return nil, err
	}
	if err := l.openWriter(); err != nil {
		h.forgetIfIdle(l)
		return nil, err
	}
	return &lineWriter{hub: h, log: l}, nil
}

// Subscribe returns the lines of a build's log after line number after: first
// those already in the file, then the live ones, with no gap and no
// duplicate. For a build whose log was closed it replays the file and ends
// with the final status. The caller must Close the subscription.
func (h *LogHub) Subscribe(id, after int64) (*Subscription, error) {
	after = max(after, 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	if l := h.logs[id]; l != nil {
		return l.subscribe(h, after), nil
	}
	final, err := h.finalStatus(id)
	if err != nil {
		return nil, err
	}
	if final != "" {
		s := newSubscription(h, nil, after, h.bufferLines())
		go s.replayFinished(h.logPath(id), final)
		return s, nil
	}
	l, err := h.liveLog(id)
	if err != nil {
		return nil, err
	}
	return l.subscribe(h, after), nil
}

// Close ends a build's log: it records the final status next to the log, so
// that later viewers get it too, and ends every subscription with it. Writers
// still open fail from now on.
func (h *LogHub) Close(id int64, final store.BuildStatus) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.writeStatus(id, final)
	if l := h.logs[id]; l != nil {
		delete(h.logs, id)
		l.end(final)
	}
	return err
}

// Text returns the whole log of a build as it is now, for download. A build
// that has not written anything yet has an empty log.
func (h *LogHub) Text(id int64) (io.ReadCloser, error) {
	f, err := os.Open(h.logPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return f, err
}

// liveLog returns the in-memory state of a build's log, loading it from its
// file when nobody had it open. The caller holds h.mu.
func (h *LogHub) liveLog(id int64) (*buildLog, error) {
	if l := h.logs[id]; l != nil {
		return l, nil
	}
	n, partial, err := countLines(h.logPath(id))
	if err != nil {
		return nil, err
	}
	l := &buildLog{id: id, dir: h.Dir(id), path: h.logPath(id), lines: n, partial: partial,
		subs: map[*Subscription]struct{}{}}
	h.logs[id] = l
	return l, nil
}

// forgetIfIdle drops a log that has neither writers nor viewers from memory.
// The caller holds h.mu.
func (h *LogHub) forgetIfIdle(l *buildLog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.writers > 0 || len(l.subs) > 0 || h.logs[l.id] != l {
		return
	}
	delete(h.logs, l.id)
	l.gone = true
}

// release is called when a writer or a viewer of l goes away.
func (h *LogHub) release(l *buildLog) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forgetIfIdle(l)
}

// finalStatus reads the status recorded by Close, or "" while the build's log
// is still open.
func (h *LogHub) finalStatus(id int64) (store.BuildStatus, error) {
	b, err := os.ReadFile(h.statusPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return store.BuildStatus(strings.TrimSpace(string(b))), err
}

func (h *LogHub) writeStatus(id int64, final store.BuildStatus) error {
	if err := os.MkdirAll(h.Dir(id), 0o750); err != nil {
		return err
	}
	return os.WriteFile(h.statusPath(id), []byte(string(final)+"\n"), 0o640)
}

// countLines counts the lines of a log file. A last line without its newline
// (left by a crash in the middle of a write) counts as a line; partial
// reports it, so that the next writer ends it first.
func countLines(path string) (n int64, partial bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	last := byte('\n')
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if err == io.EOF {
			break
		} else if err != nil {
			return 0, false, err
		}
	}
	if last != '\n' {
		return n + 1, true, nil
	}
	return n, false, nil
}

// buildLog is the live state of one build's log.
type buildLog struct {
	id        int64
	dir, path string

	mu      sync.Mutex
	file    *os.File // open while writers > 0
	writers int
	lines   int64 // lines in the file, which is also the id of the last one
	partial bool  // the file ends without a newline
	subs    map[*Subscription]struct{}
	closed  bool // Close was called: no more lines
	gone    bool // no longer in the hub's map
}

// openWriter opens the file for appending when this is the first writer.
func (l *buildLog) openWriter() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.gone {
		return os.ErrClosed
	}
	if l.file == nil {
		if err := os.MkdirAll(l.dir, 0o750); err != nil {
			return err
		}
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return err
		}
		l.file = f
	}
	l.writers++
	return nil
}

// closeWriter closes the file when the last writer goes.
func (l *buildLog) closeWriter() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writers--
	if l.writers > 0 || l.file == nil {
		return nil
	}
	err := l.file.Close()
	l.file = nil
	return err
}

// append writes complete lines to the file and hands them to every viewer.
// It never waits for a viewer.
func (l *buildLog) append(lines []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.file == nil {
		return os.ErrClosed
	}
	var buf []byte
	if l.partial {
		buf = append(buf, '\n')
	}
	for _, s := range lines {
		buf = append(append(buf, s...), '\n')
	}
	if _, err := l.file.Write(buf); err != nil {
		return fmt.Errorf("writing the log of build %d: %w", l.id, err)
	}
	l.partial = false
	for _, s := range lines {
		l.lines++
		l.fanOut(Line{ID: l.lines, Text: s})
	}
	return nil
}

// fanOut offers a line to every viewer, dropping those whose buffer is full.
// The caller holds l.mu.
func (l *buildLog) fanOut(line Line) {
	for s := range l.subs {
		if !s.offer(line) {
			delete(l.subs, s)
			s.endLocked("", true)
		}
	}
}

// subscribe attaches a viewer. Holding l.mu while reading the line count and
// registering the viewer is what makes the hand-over exact: lines up to that
// count are in the file, and every later line reaches the viewer live.
func (l *buildLog) subscribe(h *LogHub, after int64) *Subscription {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := newSubscription(h, l, after, h.bufferLines())
	l.subs[s] = struct{}{}
	if after < l.lines {
		s.replaying = true
		go s.replayLive(l.path, l.lines)
	}
	return s
}

// end closes the log with its final status. The caller holds the hub's lock
// and has removed l from the hub's map.
func (l *buildLog) end(final store.BuildStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed, l.gone = true, true
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
	for s := range l.subs {
		s.endLocked(final, false)
	}
	clear(l.subs)
}

// unsubscribe detaches a viewer that went away.
func (l *buildLog) unsubscribe(s *Subscription) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.subs, s)
}

// lineWriter splits what is written to it into lines of a build's log.
type lineWriter struct {
	hub *LogHub
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

// Subscription is one viewer of one build's log. Read Lines until it is
// closed; then Status, Dropped and Err tell why it ended.
type Subscription struct {
	hub   *LogHub
	log   *buildLog // nil when the log was already closed
	after int64     // lines up to this id were seen by the viewer already
	limit int       // the most lines the viewer may fall behind
	lines chan Line
	quit  chan struct{}
	once  sync.Once

	// Guarded by log.mu; read by the viewer only after lines is closed.
	replaying bool   // the file is still being replayed; live lines wait in pending
	pending   []Line // live lines that came during the replay
	ended     bool
	status    store.BuildStatus
	dropped   bool
	err       error
}

func newSubscription(h *LogHub, l *buildLog, after int64, limit int) *Subscription {
	return &Subscription{hub: h, log: l, after: after, limit: limit,
		lines: make(chan Line, limit), quit: make(chan struct{})}
}

// Lines delivers the log's lines in order. It is closed when the build's log
// is closed, when the viewer was dropped for falling behind, or when the file
// could not be read.
func (s *Subscription) Lines() <-chan Line { return s.lines }

// Status is the build's final status once Lines is closed because the log
// was closed; it is empty when the subscription ended for another reason.
func (s *Subscription) Status() store.BuildStatus { return s.status }

// Dropped reports, once Lines is closed, whether the viewer was dropped for
// falling too far behind. It can resume from the last line it got.
func (s *Subscription) Dropped() bool { return s.dropped }

// Err reports, once Lines is closed, an error reading the log file.
func (s *Subscription) Err() error { return s.err }

// Close detaches the viewer. Lines must not be read after Close.
func (s *Subscription) Close() {
	s.once.Do(func() {
		close(s.quit)
		if s.log != nil {
			s.log.unsubscribe(s)
			s.hub.release(s.log)
		}
	})
}

// offer hands a live line to the viewer, or keeps it while the file is being
// replayed. It reports false when the viewer has fallen too far behind. The
// caller holds log.mu.
func (s *Subscription) offer(line Line) bool {
	if line.ID <= s.after {
		return true
	}
	if s.replaying {
		if len(s.pending) >= s.limit {
			return false
		}
		s.pending = append(s.pending, line)
		return true
	}
	select {
	case s.lines <- line:
		return true
	default:
		return false
	}
}

// endLocked ends the subscription. While the file is being replayed the
// replaying goroutine closes Lines once it has delivered everything. The
// caller holds log.mu and has removed s from log.subs.
func (s *Subscription) endLocked(final store.BuildStatus, dropped bool) {
	if s.ended {
		return
	}
	s.ended, s.status, s.dropped = true, final, dropped
	if !s.replaying {
		close(s.lines)
	}
}

// replayFinished sends the lines of a closed log, then its final status.
func (s *Subscription) replayFinished(path string, final store.BuildStatus) {
	err := s.replayFile(path, -1)
	if errors.Is(err, errViewerGone{}) {
		return
	}
	s.ended, s.err = true, err
	if err == nil {
		s.status = final
	}
	close(s.lines)
}

// replayLive sends the lines up to upto from the file, then the live lines
// that arrived meanwhile, and switches the viewer to live delivery.
func (s *Subscription) replayLive(path string, upto int64) {
	err := s.replayFile(path, upto)
	if errors.Is(err, errViewerGone{}) {
		return
	}
	if err != nil {
		s.fail(err)
		return
	}
	for {
		batch, done := s.takePending()
		if done {
			return
		}
		for _, line := range batch {
			if !s.send(line) {
				return
			}
		}
	}
}

// takePending returns the live lines that came during the replay. When there
// are none it switches the viewer to live delivery (closing Lines if the
// subscription ended meanwhile) and reports done.
func (s *Subscription) takePending() ([]Line, bool) {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	batch := s.pending
	s.pending = nil
	if len(batch) > 0 {
		return batch, false
	}
	s.replaying = false
	if s.ended {
		close(s.lines)
	}
	return nil, true
}

// fail ends a subscription whose file could not be read.
func (s *Subscription) fail(err error) {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	delete(s.log.subs, s)
	s.ended, s.replaying, s.status, s.dropped, s.err = true, false, "", false, err
	close(s.lines)
}

// errViewerGone says that the viewer closed its subscription during a replay.
type errViewerGone struct{}

func (errViewerGone) Error() string { return "the viewer went away" }

// replayFile sends the lines after s.after and up to upto (to the end of the
// file when upto < 0).
func (s *Subscription) replayFile(path string, upto int64) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && upto <= s.after {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for id := int64(1); upto < 0 || id <= upto; id++ {
		text, err := readLogLine(r)
		if err == io.EOF {
			if upto >= 0 {
				return fmt.Errorf("the log has fewer than %d lines", upto)
			}
			return nil
		} else if err != nil {
			return err
		}
		if id > s.after && !s.send(Line{ID: id, Text: text}) {
			return errViewerGone{}
		}
	}
	return nil
}

// send delivers one line, waiting for the viewer; it reports false when the
// viewer went away.
func (s *Subscription) send(line Line) bool {
	select {
	case s.lines <- line:
		return true
	case <-s.quit:
		return false
	}
}

// readLogLine reads one line of a log file, without its newline. A last line
// without a newline is a line too.
func readLogLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if err == nil {
		return string(b[:len(b)-1]), nil
	}
	buf := append([]byte(nil), b...)
	for errors.Is(err, bufio.ErrBufferFull) {
		b, err = r.ReadSlice('\n')
		buf = append(buf, b...)
	}
	switch {
	case err == nil:
		return string(buf[:len(buf)-1]), nil
	case err == io.EOF && len(buf) > 0:
		return string(buf), nil
	}
	return "", err
}
