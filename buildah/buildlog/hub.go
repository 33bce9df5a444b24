// Package buildlog keeps the build logs. A build's log is a file,
// data/builds/<id>/build.log, with one line per log line; a line's id is its
// 1-based line number, so a viewer that reconnects with the id of the last
// line it saw can be given exactly the lines after it, from the file, and then
// the live ones. Live lines are fanned out to the viewers of a build through
// buffers bounded in lines and in bytes: a writer never waits for a viewer,
// and a viewer that falls too far behind is dropped (it reconnects and reads
// what it missed from the file).
//
// The pieces: Hub (this file) owns the logs of all builds; buildLog (log.go)
// is one build's file, line count and viewers; lineWriter (writer.go) turns a
// worker's bytes into lines; Subscription (subscription.go) is one viewer.
//
// Lock order, the only one in this package: a lineWriter's mu, then the Hub's
// mu, then a buildLog's mu. A Subscription has no lock of its own: its fields
// are guarded by its buildLog's mu. Never take an earlier lock while holding
// a later one.
package buildlog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"imagehub/store"
)

const (
	// DefaultBufferLines is how many lines a live viewer may fall behind
	// before it is dropped, unless Hub.BufferLines says otherwise.
	DefaultBufferLines = 1024
	// DefaultBufferBytes is how many bytes of lines a live viewer may fall
	// behind before it is dropped, unless Hub.BufferBytes says otherwise.
	// Without it a viewer's buffer could hold DefaultBufferLines lines of
	// MaxLineBytes each, 64 MiB.
	DefaultBufferBytes = 1 << 20
	// MaxLineBytes is the longest line a log keeps; a longer one (a progress
	// bar that never ends its line, say) is cut into several lines so that a
	// single line can neither exhaust memory nor stall a viewer.
	MaxLineBytes = 64 << 10

	logFileName    = "build.log"
	statusFileName = "build.status"
)

// Hub keeps the logs of all builds: it appends lines to each build's log
// file and fans them out live to that build's viewers. It is safe for
// concurrent use.
type Hub struct {
	dir string
	// BufferLines is how many lines a viewer may fall behind before it is
	// dropped; zero means DefaultBufferLines. Set it before the hub is used.
	BufferLines int
	// BufferBytes is how many bytes of lines a viewer may fall behind before
	// it is dropped (a viewer replaying the file waits instead); zero means
	// DefaultBufferBytes. Set it before the hub is used.
	BufferBytes int

	mu sync.Mutex
	// logs holds the builds that have an open writer or a live viewer;
	// everything else lives only in files.
	logs map[int64]*buildLog
}

// NewHub returns a hub that keeps each build's log under dir/<id>/.
func NewHub(dir string) *Hub {
	return &Hub{dir: dir, logs: map[int64]*buildLog{}}
}

// Line is one line of a build's log. ID is its 1-based line number: the
// Last-Event-ID a viewer sends back to resume after it.
type Line struct {
	ID   int64
	Text string
}

// Root is the folder that holds the folders of all builds.
func (h *Hub) Root() string { return h.dir }

// Dir returns the folder that belongs to one build: its log is kept there,
// and a runner may keep there what it needs to find the build's worker again.
func (h *Hub) Dir(id int64) string {
	return filepath.Join(h.dir, strconv.FormatInt(id, 10))
}

func (h *Hub) logPath(id int64) string    { return filepath.Join(h.Dir(id), logFileName) }
func (h *Hub) statusPath(id int64) string { return filepath.Join(h.Dir(id), statusFileName) }

func (h *Hub) bufferLines() int {
	if h.BufferLines > 0 {
		return h.BufferLines
	}
	return DefaultBufferLines
}

func (h *Hub) bufferBytes() int {
	if h.BufferBytes > 0 {
		return h.BufferBytes
	}
	return DefaultBufferBytes
}

// Writer returns a writer that appends to a build's log. It splits whatever is
// written into lines: a partial last line waits for its newline (or for Close),
// and a line longer than MaxLineBytes is cut into several. Several writers may
// be open at once; each keeps its own partial line.
func (h *Hub) Writer(id int64) (io.WriteCloser, error) {
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
func (h *Hub) Subscribe(id, after int64) (*Subscription, error) {
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
		s := newSubscription(h, nil, after)
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
func (h *Hub) Close(id int64, final store.BuildStatus) error {
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
func (h *Hub) Text(id int64) (io.ReadCloser, error) {
	f, err := os.Open(h.logPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return f, err
}

// Lines returns how many lines a build's log file holds (a last line left
// cut by a crash counts) and its size in bytes.
func (h *Hub) Lines(id int64) (lines, size int64, err error) {
	lines, _, err = countLines(h.logPath(id))
	if err != nil || lines == 0 {
		return lines, 0, err
	}
	fi, err := os.Stat(h.logPath(id))
	if err != nil {
		return 0, 0, err
	}
	return lines, fi.Size(), nil
}

// liveLog returns the in-memory state of a build's log, loading it from its
// file when nobody had it open. The caller holds h.mu.
func (h *Hub) liveLog(id int64) (*buildLog, error) {
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
func (h *Hub) forgetIfIdle(l *buildLog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.writers > 0 || len(l.subs) > 0 || h.logs[l.id] != l {
		return
	}
	delete(h.logs, l.id)
	l.gone = true
}

// release is called when a writer or a viewer of l goes away.
func (h *Hub) release(l *buildLog) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forgetIfIdle(l)
}

// finalStatus reads the status recorded by Close, or "" while the build's log
// is still open.
func (h *Hub) finalStatus(id int64) (store.BuildStatus, error) {
	b, err := os.ReadFile(h.statusPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return store.BuildStatus(strings.TrimSpace(string(b))), err
}

func (h *Hub) writeStatus(id int64, final store.BuildStatus) error {
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
