package buildlog

import (
	"fmt"
	"sync"
	"testing"

	"imagehub/store"
)

// BenchmarkLogHubFanOut measures what one log line costs the writer when n
// viewers follow the build live: the write to the file plus the hand-over to
// every viewer's buffer.
func BenchmarkLogHubFanOut(b *testing.B) {
	for _, n := range []int{0, 1, 200} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) {
			h := NewHub(b.TempDir())
			h.BufferLines = b.N + 1 // measure the fan-out, not drops
			h.BufferBytes = 1 << 40
			w, err := h.Writer(1)
			if err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			for range n {
				sub, _ := h.Subscribe(1, 0)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer sub.Close()
					for range sub.Lines() {
					}
				}()
			}
			line := []byte("Step 3/5: RUN apt-get install -y --no-install-recommends python3 ... 42%\n")
			b.SetBytes(int64(len(line)))
			b.ResetTimer()
			for range b.N {
				w.Write(line)
			}
			b.StopTimer()
			w.Close()
			h.Close(1, store.BuildSucceeded)
			wg.Wait()
		})
	}
}

// BenchmarkLogHubReplay measures how fast a viewer that reconnects gets a
// finished log of 10,000 lines from the file.
func BenchmarkLogHubReplay(b *testing.B) {
	h := NewHub(b.TempDir())
	w, _ := h.Writer(1)
	for i := range 10000 {
		fmt.Fprintf(w, "line %d of a fairly ordinary build log, about eighty bytes long........\n", i)
	}
	w.Close()
	h.Close(1, store.BuildSucceeded)
	b.ResetTimer()
	for range b.N {
		sub, _ := h.Subscribe(1, 0)
		for range sub.Lines() {
		}
		sub.Close()
	}
}
