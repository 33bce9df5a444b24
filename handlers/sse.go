package handlers

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/store"
)

// How the log stream paces itself.
const (
	// DefaultPing is how often an idle stream sends a comment, so that
	// proxies keep the connection open and a dead viewer is noticed.
	DefaultPing = 15 * time.Second
	// sseRetry is how soon a browser reconnects after the stream ends
	// without a done event (a viewer dropped for falling behind).
	sseRetry = time.Second
	// sseWriteTimeout bounds one write to a viewer: a viewer that stops
	// reading is disconnected instead of holding a goroutine forever.
	sseWriteTimeout = 30 * time.Second
	// sseBatch is how many waiting lines are sent together before a flush.
	sseBatch = 256
	// sseBatchBytes bounds the bytes gathered before a flush, so that a
	// batch of long lines (up to buildlog.MaxLineBytes each) does not hold
	// megabytes per viewer: a batch ends once it passes this.
	sseBatchBytes = 64 << 10
)

// StreamLog sends a build's log as Server-Sent Events: each line as an event
// whose id is its line number, resuming after the Last-Event-ID header (or the
// "last" query parameter, for clients that cannot set headers), a ": ping"
// comment every ping interval, and at the end an event "done" whose data is
// the final status, {"status":"succeeded"}. A viewer that falls too far
// behind is dropped by the hub; then the stream just ends, and the browser's
// EventSource reconnects with the id of the last line it got and misses
// nothing.
//
// It returns an error only when the stream cannot start (the log cannot be
// opened, or w cannot flush) or when the log file cannot be read; a viewer
// that goes away is the normal end of a stream and returns nil.
func StreamLog(w http.ResponseWriter, r *http.Request, hub *buildlog.Hub, id int64, ping time.Duration) error {
	sub, err := hub.Subscribe(id, lastEventID(r))
	if err != nil {
		return err
	}
	defer sub.Close()
	s := newSSEStream(w)
	s.start()
	if err := s.flush(); err != nil {
		return err
	}
	if ping <= 0 {
		ping = DefaultPing
	}
	ticker := time.NewTicker(ping)
	defer ticker.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-ticker.C:
			s.comment("ping")
		case line, ok := <-sub.Lines():
			if !ok || !s.lines(line, sub.Lines()) {
				return s.end(sub)
			}
		}
		if s.flush() != nil {
			return nil
		}
	}
}

// lastEventID is the id of the last line the viewer has, 0 for none.
func lastEventID(r *http.Request) int64 {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// sseStream formats events into a buffer and flushes them to the viewer.
type sseStream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
}

func newSSEStream(w http.ResponseWriter) *sseStream {
	return &sseStream{w: w, rc: http.NewResponseController(w), buf: make([]byte, 0, 4096)}
}

// start sends the headers and the reconnection delay.
func (s *sseStream) start() {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	s.w.WriteHeader(http.StatusOK)
	s.buf = append(s.buf, "retry: "...)
	s.buf = strconv.AppendInt(s.buf, sseRetry.Milliseconds(), 10)
	s.buf = append(s.buf, "\n\n"...)
}

// lines adds line and then every line already waiting, up to sseBatch lines
// and sseBatchBytes, so that a burst costs one flush. It reports false when
// the subscription ended.
func (s *sseStream) lines(first buildlog.Line, more <-chan buildlog.Line) bool {
	s.event("", first.ID, first.Text)
	for range sseBatch - 1 {
		if len(s.buf) >= sseBatchBytes {
			return true
		}
		select {
		case line, ok := <-more:
			if !ok {
				return false
			}
			s.event("", line.ID, line.Text)
		default:
			return true
		}
	}
	return true
}

// end sends the done event when the log was closed; a dropped viewer's
// stream just ends, so that it reconnects.
func (s *sseStream) end(sub *buildlog.Subscription) error {
	if sub.Dropped() || sub.Err() != nil {
		s.flush()
		return sub.Err()
	}
	data, _ := json.Marshal(struct {
		Status store.BuildStatus `json:"status"`
	}{sub.Status()})
	s.event("done", 0, string(data))
	s.flush()
	return nil
}

// event adds one event. A carriage return inside the text (a progress bar)
// would end the data field early, so the text is split there into several
// data fields, which the browser joins with newlines.
func (s *sseStream) event(name string, id int64, text string) {
	if name != "" {
		s.buf = append(append(append(s.buf, "event: "...), name...), '\n')
	}
	if id > 0 {
		s.buf = strconv.AppendInt(append(s.buf, "id: "...), id, 10)
		s.buf = append(s.buf, '\n')
	}
	for {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			break
		}
		s.buf = append(append(append(s.buf, "data: "...), text[:i]...), '\n')
		text = text[i+1:]
	}
	s.buf = append(append(append(s.buf, "data: "...), text...), "\n\n"...)
}

// comment adds a comment line, which viewers ignore.
func (s *sseStream) comment(text string) {
	s.buf = append(append(append(s.buf, ": "...), text...), "\n\n"...)
}

// flush writes what is buffered and pushes it to the viewer at once.
func (s *sseStream) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	if err != nil {
		return err
	}
	return s.rc.Flush()
}
