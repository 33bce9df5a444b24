package handlers

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/store"
)

// sseEvent is one parsed Server-Sent Event (or comment).
type sseEvent struct {
	id      int64
	name    string
	data    string
	comment string
}

// sseReader parses an event stream the way a browser does (for the fields
// StreamLog uses).
type sseReader struct {
	r *bufio.Reader
}

// next returns the next event or comment; io.EOF when the stream ended.
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data []string
	seen := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if !seen {
				continue
			}
			ev.data = strings.Join(data, "\n")
			return ev, nil
		}
		seen = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.comment = value
		case "id":
			ev.id, _ = strconv.ParseInt(value, 10, 64)
		case "event":
			ev.name = value
		case "data":
			data = append(data, value)
		}
	}
}

// sseServer serves the log of build 1 from hub, counting running streams.
type sseServer struct {
	*httptest.Server
	hub     *buildlog.Hub
	running atomic.Int64
}

func newSSEServer(t testing.TB, ping time.Duration) *sseServer {
	s := &sseServer{hub: buildlog.NewHub(t.TempDir())}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.running.Add(1)
		defer s.running.Add(-1)
		if err := StreamLog(w, r, s.hub, 1, ping); err != nil {
			t.Errorf("StreamLog: %v", err)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// open connects a viewer, resuming after last when it is not empty.
func (s *sseServer) open(t testing.TB, last string) (*sseReader, io.Closer) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/builds/1/log", nil)
	req.Header.Set("Accept", "text/event-stream")
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d, content type %q", res.StatusCode, ct)
	}
	return &sseReader{r: bufio.NewReader(res.Body)}, res.Body
}

// readToEnd reads events until the stream ends, skipping comments and the
// retry field.
func readToEnd(t testing.TB, r *sseReader) []sseEvent {
	t.Helper()
	var out []sseEvent
	for {
		ev, err := r.next()
		if err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		if ev.comment == "" && (ev.id > 0 || ev.name != "") {
			out = append(out, ev)
		}
	}
}

// checkLines fails unless events are the lines first, first+1, … whose text
// is their number, followed by a done event with status (none when status
// is empty).
func checkLines(t *testing.T, events []sseEvent, first, last int64, status store.BuildStatus) {
	t.Helper()
	want := first
	for _, ev := range events {
		if ev.name == "done" {
			break
		}
		if ev.id != want || ev.data != fmt.Sprint(want) {
			t.Fatalf("got line %d %q, want %d (gap or duplicate)", ev.id, ev.data, want)
		}
		want++
	}
	if want != last+1 {
		t.Errorf("lines %d..%d, want up to %d", first, want-1, last)
	}
	end := events[len(events)-1]
	switch {
	case status == "" && end.name == "done":
		t.Errorf("unexpected done event %q", end.data)
	case status != "" && (end.name != "done" || end.data != `{"status":"`+string(status)+`"}`):
		t.Errorf("last event %+v, want done with %s", end, status)
	}
}

func writeNumbers(t testing.TB, w io.Writer, from, to int) {
	for i := from; i <= to; i++ {
		if _, err := fmt.Fprintf(w, "%d\n", i); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStreamLogFinishedBuild(t *testing.T) {
	s := newSSEServer(t, time.Hour)
	w, _ := s.hub.Writer(1)
	writeNumbers(t, w, 1, 10)
	w.Close()
	s.hub.Close(1, store.BuildSucceeded)
	r, body := s.open(t, "")
	defer body.Close()
	checkLines(t, readToEnd(t, r), 1, 10, store.BuildSucceeded)
}

func TestStreamLogResume(t *testing.T) {
	s := newSSEServer(t, time.Hour)
	w, _ := s.hub.Writer(1)
	writeNumbers(t, w, 1, 10)
	w.Close()
	s.hub.Close(1, store.BuildFailed)
	r, body := s.open(t, "7")
	defer body.Close()
	checkLines(t, readToEnd(t, r), 8, 10, store.BuildFailed)

	res, err := http.Get(s.URL + "/?last=9")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	checkLines(t, readToEnd(t, &sseReader{r: bufio.NewReader(res.Body)}), 10, 10, store.BuildFailed)
}

func TestStreamLogLive(t *testing.T) {
	s := newSSEServer(t, time.Hour)
	r, body := s.open(t, "")
	defer body.Close()
	w, _ := s.hub.Writer(1)
	for i := int64(1); i <= 5; i++ {
		fmt.Fprintf(w, "%d\n", i)
		ev, err := r.next()
		for err == nil && ev.id == 0 { // the retry field
			ev, err = r.next()
		}
		if err != nil || ev.id != i || ev.data != fmt.Sprint(i) {
			t.Fatalf("got %+v %v, want line %d as it is written", ev, err, i)
		}
	}
	w.Close()
	s.hub.Close(1, store.BuildCancelled)
	if end := readToEnd(t, r); len(end) != 1 || end[0].data != `{"status":"cancelled"}` {
		t.Errorf("end = %+v", end)
	}
}

func TestStreamLogCarriageReturns(t *testing.T) {
	s := newSSEServer(t, time.Hour)
	w, _ := s.hub.Writer(1)
	fmt.Fprint(w, "10%\r50%\r100%\r\n")
	w.Close()
	s.hub.Close(1, store.BuildSucceeded)
	r, body := s.open(t, "")
	defer body.Close()
	got := readToEnd(t, r)
	if len(got) != 2 || got[0].data != "10%\n50%\n100%" {
		t.Errorf("events %+v", got)
	}
}

func TestStreamLogPing(t *testing.T) {
	s := newSSEServer(t, 20*time.Millisecond)
	r, body := s.open(t, "")
	defer body.Close()
	for {
		ev, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.comment == "ping" {
			return
		}
	}
}

// TestStreamLogViewersLeaveMidStream disconnects viewers in the middle of a
// live log: their streams must end, and a viewer that comes back with the
// id of the last line it got must get the rest exactly once.
func TestStreamLogViewersLeaveMidStream(t *testing.T) {
	s := newSSEServer(t, time.Hour)
	w, _ := s.hub.Writer(1)
	writeNumbers(t, w, 1, 20)
	var wg sync.WaitGroup
	lastSeen := make([]int64, 10)
	for v := range lastSeen {
		r, body := s.open(t, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lastSeen[v] < int64(5+v) {
				ev, err := r.next()
				if err != nil {
					t.Error(err)
					return
				}
				lastSeen[v] = max(lastSeen[v], ev.id)
			}
			body.Close()
		}()
	}
	wg.Wait()
	writeNumbers(t, w, 21, 40) // the server notices the gone viewers on writing
	deadline := time.Now().Add(5 * time.Second)
	for s.running.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams still running after their viewers left", s.running.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for v, last := range lastSeen {
		r, body := s.open(t, fmt.Sprint(last))
		if v == 0 {
			writeNumbers(t, w, 41, 50)
			w.Close()
			s.hub.Close(1, store.BuildSucceeded)
		}
		checkLines(t, readToEnd(t, r), last+1, 50, store.BuildSucceeded)
		body.Close()
	}
}

// TestStreamLogSlowViewerIsDropped fills a viewer's buffers until the hub
// drops it: the writer never waits, the stream ends without a done event,
// and resuming from the last line received misses nothing. The hub drops it
// by lines (a small BufferLines) or, with the default of 1024 lines, by
// bytes: 600 lines of 60 KiB fit in 1024 lines but not in a megabyte.
func TestStreamLogSlowViewerIsDropped(t *testing.T) {
	t.Run("lines", func(t *testing.T) {
		testStreamLogSlowViewerIsDropped(t, func(h *buildlog.Hub) { h.BufferLines = 4 })
	})
	t.Run("bytes", func(t *testing.T) { testStreamLogSlowViewerIsDropped(t, func(*buildlog.Hub) {}) })
}

func testStreamLogSlowViewerIsDropped(t *testing.T, tweak func(*buildlog.Hub)) {
	s := newSSEServer(t, time.Hour)
	tweak(s.hub)
	r, body := s.open(t, "")
	defer body.Close()
	w, _ := s.hub.Writer(1)
	// Lines of 60 KiB: a few hundred fill the socket buffers of a viewer
	// that reads nothing.
	pad := strings.Repeat("x", 60<<10)
	const total = 600
	start := time.Now()
	for i := 1; i <= total; i++ {
		fmt.Fprintf(w, "%d %s\n", i, pad)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("writing took %s: the writer waited for the viewer", took)
	}
	var last int64
	for {
		ev, err := r.next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if ev.name == "done" {
			t.Fatal("a dropped viewer got a done event")
		}
		if ev.id > 0 {
			if ev.id != last+1 {
				t.Fatalf("line %d after %d", ev.id, last)
			}
			last = ev.id
		}
	}
	if last >= total {
		t.Fatalf("the viewer was not dropped (got all %d lines)", last)
	}
	w.Close()
	s.hub.Close(1, store.BuildSucceeded)
	r2, body2 := s.open(t, fmt.Sprint(last))
	defer body2.Close()
	rest := readToEnd(t, r2)
	if len(rest) != total-int(last)+1 || rest[0].id != last+1 || rest[len(rest)-1].name != "done" {
		t.Errorf("resumed after %d: %d events", last, len(rest))
	}
}

func TestLastEventID(t *testing.T) {
	tests := []struct {
		header, query string
		want          int64
	}{
		{"", "", 0},
		{"12", "", 12},
		{" 7 ", "3", 7},
		{"", "3", 3},
		{"-4", "", 0},
		{"abc", "", 0},
	}
	for _, tt := range tests {
		r := httptest.NewRequestWithContext(context.Background(), "GET", "/log?last="+tt.query, nil)
		if tt.header != "" {
			r.Header.Set("Last-Event-ID", tt.header)
		}
		if got := lastEventID(r); got != tt.want {
			t.Errorf("header %q query %q: got %d, want %d", tt.header, tt.query, got, tt.want)
		}
	}
}
