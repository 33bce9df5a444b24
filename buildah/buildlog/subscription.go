package buildlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"imagehub/store"
)

// Subscription is one viewer of one build's log. Read Lines until it is
// closed; then Status, Dropped and Err tell why it ended.
type Subscription struct {
	hub   *Hub
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

func newSubscription(h *Hub, l *buildLog, after int64, limit int) *Subscription {
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
