package buildlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"imagehub/store"
)

// Subscription is one viewer of one build's log. Read Lines until it is
// closed; then Status, Dropped and Err tell why it ended.
type Subscription struct {
	hub      *Hub
	log      *buildLog // nil when the log was already closed
	after    int64     // lines up to this id were seen by the viewer already
	limit    int       // the most lines the viewer may fall behind
	maxBytes int       // the most bytes of lines the viewer may fall behind
	lines    chan Line
	quit     chan struct{}
	once     sync.Once

	// Guarded by log.mu; read by the viewer only after lines is closed.
	replaying    bool   // the file is still being replayed; live lines wait in pending
	pending      []Line // live lines that came during the replay
	pendingBytes int    // the bytes of the texts in pending
	ended        bool
	status       store.BuildStatus
	dropped      bool
	err          error

	// What waits in lines, in bytes (see queuedBytes). Used by whoever sends
	// on lines: the replaying goroutine while replaying is set, else the
	// writer, under log.mu.
	sent      []int // the sizes of the lines sent that may still wait, oldest first
	sentBytes int   // their sum
}

func newSubscription(h *Hub, l *buildLog, after int64) *Subscription {
	limit := h.bufferLines()
	return &Subscription{hub: h, log: l, after: after, limit: limit, maxBytes: h.bufferBytes(),
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
// replayed. It reports false when the viewer has fallen too far behind, in
// lines or in bytes. The caller holds log.mu.
func (s *Subscription) offer(line Line) bool {
	if line.ID <= s.after {
		return true
	}
	n := len(line.Text)
	if s.replaying {
		if len(s.pending) >= s.limit || !s.fitsBytes(s.pendingBytes, n) {
			return false
		}
		s.pending = append(s.pending, line)
		s.pendingBytes += n
		return true
	}
	if !s.fitsBytes(s.queuedBytes(), n) {
		return false
	}
	select {
	case s.lines <- line:
		s.sentLine(n)
		return true
	default:
		return false
	}
}

// fitsBytes reports whether n more bytes may wait for the viewer where
// queued bytes wait already. An empty buffer takes any one line.
func (s *Subscription) fitsBytes(queued, n int) bool {
	return queued == 0 || queued+n <= s.maxBytes
}

// queuedBytes returns the bytes of the lines that wait in s.lines for the
// viewer. A channel keeps its order, so the lines waiting are the last
// len(s.lines) sent: the sizes of those sent before them are forgotten.
// Only the one sender of the moment may call it (see Subscription.sent).
func (s *Subscription) queuedBytes() int {
	waiting := len(s.lines)
	for len(s.sent) > waiting {
		s.sentBytes -= s.sent[0]
		s.sent = s.sent[1:]
	}
	return s.sentBytes
}

// sentLine records a line of n bytes sent on s.lines.
func (s *Subscription) sentLine(n int) {
	s.sent = append(s.sent, n)
	s.sentBytes += n
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
	s.pending, s.pendingBytes = nil, 0
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

// replayWait is how often a replaying goroutine whose viewer has a full
// buffer (in bytes) looks whether the viewer has taken some of it.
const replayWait = 5 * time.Millisecond

// send delivers one line from the replaying goroutine, waiting for the viewer
// while its buffer is full, in lines or in bytes; it reports false when the
// viewer went away.
func (s *Subscription) send(line Line) bool {
	n := len(line.Text)
	if !s.fitsBytes(s.queuedBytes(), n) {
		t := time.NewTimer(replayWait)
		defer t.Stop()
		for !s.fitsBytes(s.queuedBytes(), n) {
			select {
			case <-t.C:
				t.Reset(replayWait)
			case <-s.quit:
				return false
			}
		}
	}
	select {
	case s.lines <- line:
		s.sentLine(n)
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
