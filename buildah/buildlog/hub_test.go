package buildlog

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"imagehub/store"
)

// collect reads a subscription to its end, failing the test if that takes
// longer than a few seconds.
func collect(t *testing.T, s *Subscription) []Line {
	t.Helper()
	var got []Line
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-s.Lines():
			if !ok {
				return got
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("subscription did not end; got %d lines", len(got))
		}
	}
}

// texts returns the texts of lines.
func texts(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

// checkIDs fails unless lines are numbered from first on, one by one.
func checkIDs(t *testing.T, lines []Line, first int64) {
	t.Helper()
	for i, l := range lines {
		if want := first + int64(i); l.ID != want {
			t.Fatalf("line %d has id %d, want %d (gap or duplicate)", i, l.ID, want)
		}
	}
}

func writeAll(t *testing.T, w io.Writer, chunks ...string) {
	t.Helper()
	for _, c := range chunks {
		if _, err := io.WriteString(w, c); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLogWriterSplitsLines(t *testing.T) {
	h := NewHub(t.TempDir())
	w, err := h.Writer(1)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, "one\ntw", "o\n", "", "three\r\nfour\n\nsix", "")
	sub, err := h.Subscribe(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(1, store.BuildSucceeded); err != nil {
		t.Fatal(err)
	}
	got := collect(t, sub)
	want := []string{"one", "two", "three", "four", "", "six"}
	if fmt.Sprint(texts(got)) != fmt.Sprint(want) {
		t.Errorf("lines = %q, want %q", texts(got), want)
	}
	checkIDs(t, got, 1)
	if sub.Status() != store.BuildSucceeded || sub.Dropped() || sub.Err() != nil {
		t.Errorf("end = %q dropped=%v err=%v, want succeeded", sub.Status(), sub.Dropped(), sub.Err())
	}
	file, _ := os.ReadFile(filepath.Join(h.Dir(1), "build.log"))
	if got, want := string(file), "one\ntwo\nthree\nfour\n\nsix\n"; got != want {
		t.Errorf("file = %q, want %q", got, want)
	}
}

func TestLogWriterCutsLongLines(t *testing.T) {
	h := NewHub(t.TempDir())
	w, _ := h.Writer(1)
	// "é" is two bytes: put one across the cut so that it must move whole
	// into the second line.
	long := strings.Repeat("a", MaxLineBytes-1) + "é" + strings.Repeat("b", 10)
	writeAll(t, w, long[:1000], long[1000:], "\nshort\n")
	w.Close()
	h.Close(1, store.BuildFailed)
	sub, _ := h.Subscribe(1, 0)
	defer sub.Close()
	got := texts(collect(t, sub))
	if len(got) != 3 {
		t.Fatalf("got %d lines, want 3", len(got))
	}
	if got[0] != strings.Repeat("a", MaxLineBytes-1) || got[1] != "é"+strings.Repeat("b", 10) || got[2] != "short" {
		t.Errorf("cut wrongly: lengths %d, %d; last %q", len(got[0]), len(got[1]), got[2])
	}
}

func TestLogWriterEndlessLineWithoutNewline(t *testing.T) {
	h := NewHub(t.TempDir())
	w, _ := h.Writer(1)
	sub, _ := h.Subscribe(1, 0)
	defer sub.Close()
	writeAll(t, w, strings.Repeat("x", 3*MaxLineBytes+5))
	// Three whole lines are out before any newline or Close.
	for i := 1; i <= 3; i++ {
		l := <-sub.Lines()
		if l.ID != int64(i) || len(l.Text) != MaxLineBytes {
			t.Fatalf("line %d: id %d, %d bytes", i, l.ID, len(l.Text))
		}
	}
	w.Close()
	if l := <-sub.Lines(); l.ID != 4 || l.Text != "xxxxx" {
		t.Errorf("last line = %d %q, want 4 xxxxx", l.ID, l.Text)
	}
}

func TestLogResumeAfterLastEventID(t *testing.T) {
	h := NewHub(t.TempDir())
	w, _ := h.Writer(7)
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	sub, err := h.Subscribe(7, 42)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := 51; i <= 60; i++ {
		fmt.Fprintf(w, "line %d\n", i)
	}
	w.Close()
	h.Close(7, store.BuildFailed)
	got := collect(t, sub)
	checkIDs(t, got, 43)
	if len(got) != 18 || got[0].Text != "line 43" || got[17].Text != "line 60" {
		t.Errorf("got %d lines from %v to %v, want 43..60", len(got), got[0], got[len(got)-1])
	}
	if sub.Status() != store.BuildFailed {
		t.Errorf("status = %q, want failed", sub.Status())
	}
}

// TestLogResumeRace attaches viewers at random moments, each from a random
// line, while a writer appends as fast as it can: every viewer must see every
// line after its starting point exactly once, in order.
func TestLogResumeRace(t *testing.T) {
	h := NewHub(t.TempDir())
	h.BufferLines = 20001 // nobody is dropped here: the point is the hand-over
	const total = 20000
	w, _ := h.Writer(3)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for v := 0; v < 40; v++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			after := int64(rand.IntN(total / 4))
			sub, err := h.Subscribe(3, after)
			if err != nil {
				errs <- err
				return
			}
			defer sub.Close()
			next := after + 1
			for l := range sub.Lines() {
				if l.ID != next || l.Text != fmt.Sprint(l.ID) {
					errs <- fmt.Errorf("viewer from %d: got %d %q, want %d", after, l.ID, l.Text, next)
					return
				}
				next++
			}
			if next != total+1 || sub.Status() != store.BuildSucceeded {
				errs <- fmt.Errorf("viewer from %d ended at %d with %q", after, next, sub.Status())
			}
		}()
	}
	for i := 1; i <= total; i++ {
		fmt.Fprintf(w, "%d\n", i)
		if i%100 == 0 {
			runtime.Gosched() // let viewers attach in the middle of the stream
		}
	}
	w.Close()
	h.Close(3, store.BuildSucceeded)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLogSlowViewerIsDroppedWithoutBlockingTheWriter(t *testing.T) {
	h := NewHub(t.TempDir())
	h.BufferLines = 4
	w, _ := h.Writer(1)
	slow, _ := h.Subscribe(1, 0)
	defer slow.Close()
	fast, _ := h.Subscribe(1, 0)
	defer fast.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "%d\n", i)
		}
		// The fast viewer keeps up; the slow one reads nothing.
		for i := 1; i <= 3; i++ {
			<-fast.Lines()
		}
		for i := 4; i <= 20; i++ {
			fmt.Fprintf(w, "%d\n", i)
			<-fast.Lines()
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer was blocked by a slow viewer")
	}
	got := collect(t, slow)
	checkIDs(t, got, 1)
	if len(got) != 4 || !slow.Dropped() || slow.Status() != "" {
		t.Errorf("slow viewer got %d lines, dropped=%v status=%q; want 4, true, empty", len(got), slow.Dropped(), slow.Status())
	}
	// Resuming from the last line it got misses nothing.
	again, _ := h.Subscribe(1, got[len(got)-1].ID)
	defer again.Close()
	w.Close()
	h.Close(1, store.BuildCancelled)
	rest := collect(t, again)
	checkIDs(t, rest, 5)
	if len(rest) != 16 || again.Status() != store.BuildCancelled {
		t.Errorf("resumed viewer got %d lines, status %q; want 16, cancelled", len(rest), again.Status())
	}
}

func TestLogViewerDroppedDuringReplay(t *testing.T) {
	h := NewHub(t.TempDir())
	h.BufferLines = 2
	w, _ := h.Writer(1)
	fmt.Fprint(w, "1\n2\n3\n")
	sub, _ := h.Subscribe(1, 0) // replays 1..3 from the file; reads nothing yet
	defer sub.Close()
	fmt.Fprint(w, "4\n5\n6\n7\n8\n9\n")
	got := collect(t, sub)
	checkIDs(t, got, 1)
	if !sub.Dropped() {
		t.Errorf("not dropped; got %d lines", len(got))
	}
}

func TestLogFinishedBuildReplaysThenDone(t *testing.T) {
	dir := t.TempDir()
	h := NewHub(dir)
	w, _ := h.Writer(9)
	fmt.Fprint(w, "a\nb\nc")
	w.Close()
	h.Close(9, store.BuildSucceeded)

	// A new hub (a restarted server) knows the final status from the file.
	h2 := NewHub(dir)
	for _, after := range []int64{0, 2, 3, 100} {
		sub, err := h2.Subscribe(9, after)
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, sub)
		sub.Close()
		if len(got) > 0 {
			checkIDs(t, got, after+1)
		}
		if want := max(0, 3-after); int64(len(got)) != want || sub.Status() != store.BuildSucceeded {
			t.Errorf("after %d: %d lines, status %q; want %d, succeeded", after, len(got), sub.Status(), want)
		}
	}
	if len(h2.logs) != 0 {
		t.Errorf("a finished log stays in memory: %d", len(h2.logs))
	}
}

func TestLogQueuedViewerGetsDone(t *testing.T) {
	h := NewHub(t.TempDir())
	sub, _ := h.Subscribe(5, 0)
	defer sub.Close()
	h.Close(5, store.BuildCancelled)
	if got := collect(t, sub); len(got) != 0 || sub.Status() != store.BuildCancelled {
		t.Errorf("got %d lines and %q, want none and cancelled", len(got), sub.Status())
	}
}

func TestLogContinuesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "4", "build.log")
	os.MkdirAll(filepath.Dir(path), 0o750)
	// A crash in the middle of a write left a line without its newline.
	os.WriteFile(path, []byte("a\nb"), 0o640)
	h := NewHub(dir)
	w, err := h.Writer(4)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w, "c\n")
	w.Close()
	h.Close(4, store.BuildInterrupted)
	sub, _ := h.Subscribe(4, 2)
	defer sub.Close()
	got := collect(t, sub)
	if len(got) != 1 || got[0] != (Line{ID: 3, Text: "c"}) {
		t.Errorf("got %v, want [{3 c}]", got)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "a\nb\nc\n" {
		t.Errorf("file = %q", b)
	}
}

func TestLogTextAndClosedWriter(t *testing.T) {
	h := NewHub(t.TempDir())
	r, err := h.Text(1)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("a build without a log has text %q", b)
	}
	r.Close()
	w, _ := h.Writer(1)
	fmt.Fprint(w, "x\ny\n")
	h.Close(1, store.BuildFailed)
	if _, err := fmt.Fprint(w, "late\n"); err == nil {
		t.Error("a write after Close succeeded")
	}
	w.Close()
	r, _ = h.Text(1)
	defer r.Close()
	if b, _ := io.ReadAll(r); string(b) != "x\ny\n" {
		t.Errorf("text = %q", b)
	}
}

func TestLogForgetsIdleBuilds(t *testing.T) {
	h := NewHub(t.TempDir())
	w, _ := h.Writer(1)
	sub, _ := h.Subscribe(1, 0)
	fmt.Fprint(w, "x\n")
	w.Close()
	if len(h.logs) != 1 {
		t.Fatalf("a log with a viewer was forgotten")
	}
	sub.Close()
	if len(h.logs) != 0 {
		t.Errorf("%d idle logs stay in memory", len(h.logs))
	}
	// A viewer that comes back later continues where the file is.
	w, _ = h.Writer(1)
	fmt.Fprint(w, "y\n")
	sub, _ = h.Subscribe(1, 1)
	defer sub.Close()
	w.Close()
	h.Close(1, store.BuildSucceeded)
	if got := collect(t, sub); len(got) != 1 || got[0] != (Line{ID: 2, Text: "y"}) {
		t.Errorf("got %v, want [{2 y}]", got)
	}
}

func TestLogViewerLeavingDuringReplay(t *testing.T) {
	h := NewHub(t.TempDir())
	w, _ := h.Writer(1)
	defer w.Close()
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(w, "%d\n", i)
	}
	sub, _ := h.Subscribe(1, 0)
	<-sub.Lines()
	sub.Close() // the replaying goroutine must notice and stop
	fmt.Fprint(w, "more\n")
	time.Sleep(10 * time.Millisecond)
	h.mu.Lock()
	n := len(h.logs[1].subs)
	h.mu.Unlock()
	if n != 0 {
		t.Errorf("%d viewers left after Close", n)
	}
}

// TestLogSlowViewerWithHugeLinesIsDroppedByBytes plays a viewer that reads
// nothing while a build writes lines of 60 KiB: far fewer lines than
// BufferLines fill a megabyte, and the viewer is dropped once its buffer
// holds DefaultBufferBytes, not 1024 lines (60 MiB). A viewer that keeps up
// is not dropped.
func TestLogSlowViewerWithHugeLinesIsDroppedByBytes(t *testing.T) {
	h := NewHub(t.TempDir())
	w, _ := h.Writer(1)
	slow, _ := h.Subscribe(1, 0)
	defer slow.Close()
	fast, _ := h.Subscribe(1, 0)
	defer fast.Close()
	huge := strings.Repeat("x", 60<<10)
	const total = 100
	for i := 1; i <= total; i++ {
		fmt.Fprintf(w, "%s\n", huge)
		if l := <-fast.Lines(); l.ID != int64(i) {
			t.Fatalf("fast viewer got line %d, want %d", l.ID, i)
		}
	}
	got := collect(t, slow)
	checkIDs(t, got, 1)
	if want := DefaultBufferBytes / len(huge); len(got) != want || !slow.Dropped() {
		t.Errorf("slow viewer got %d lines (dropped=%v), want %d and dropped", len(got), slow.Dropped(), want)
	}
	w.Close()
	h.Close(1, store.BuildSucceeded)
	if rest := collect(t, fast); len(rest) != 0 || fast.Dropped() || fast.Status() != store.BuildSucceeded {
		t.Errorf("fast viewer: %d more lines, dropped=%v, status %q", len(rest), fast.Dropped(), fast.Status())
	}
}

// TestLogReplayIsBoundedInBytes replays a finished log of huge lines to a
// viewer that reads slowly: what waits for it never passes BufferBytes, and
// it still gets every line.
func TestLogReplayIsBoundedInBytes(t *testing.T) {
	h := NewHub(t.TempDir())
	h.BufferBytes = 256 << 10
	w, _ := h.Writer(1)
	huge := strings.Repeat("y", 60<<10)
	const total = 40
	for range total {
		fmt.Fprintf(w, "%s\n", huge)
	}
	w.Close()
	h.Close(1, store.BuildSucceeded)
	sub, _ := h.Subscribe(1, 0)
	defer sub.Close()
	// At most one line may pass the bound: an empty buffer takes any line.
	most := h.BufferBytes/len(huge) + 1
	var got []Line
	for {
		time.Sleep(2 * time.Millisecond)
		if waiting := len(sub.lines); waiting > most {
			t.Fatalf("%d lines of %d bytes wait for the viewer; the bound is %d bytes", waiting, len(huge), h.BufferBytes)
		}
		l, ok := <-sub.Lines()
		if !ok {
			break
		}
		got = append(got, l)
	}
	checkIDs(t, got, 1)
	if len(got) != total || sub.Status() != store.BuildSucceeded {
		t.Errorf("got %d lines, status %q; want %d, succeeded", len(got), sub.Status(), total)
	}
}

// TestLogViewerDroppedByBytesDuringReplay: live lines that come while the
// file is replayed wait in a buffer bounded in bytes too.
func TestLogViewerDroppedByBytesDuringReplay(t *testing.T) {
	h := NewHub(t.TempDir())
	h.BufferBytes = 4
	w, _ := h.Writer(1)
	fmt.Fprint(w, "aaaa\nbbbb\ncccc\n")
	sub, _ := h.Subscribe(1, 0) // replays; "bbbb" waits until the viewer reads
	defer sub.Close()
	fmt.Fprint(w, "dddd\neeee\nffff\n")
	got := collect(t, sub)
	if strings.Join(texts(got), " ") != "aaaa bbbb cccc dddd" || !sub.Dropped() {
		t.Errorf("got %v, dropped=%v; want aaaa…dddd and dropped", texts(got), sub.Dropped())
	}
	w.Close()
}
