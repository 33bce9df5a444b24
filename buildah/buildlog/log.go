package buildlog

import (
	"fmt"
	"os"
	"sync"

	"imagehub/store"
)

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
func (l *buildLog) subscribe(h *Hub, after int64) *Subscription {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := newSubscription(h, l, after)
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
