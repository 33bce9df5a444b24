package buildlog

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A build followed again after a restart gets its worker's output from the
// start; SkipLines leaves out the lines the log holds already, cut as the
// log cuts them (newlines, lines longer than MaxLineBytes, CRLF), so that
// the file ends with every line once. The restart falls at every point of
// the output, in random chunks.
func TestSkipLinesResumesALogExactly(t *testing.T) {
	output := "first\r\n" + strings.Repeat("a", MaxLineBytes+10) + "\nmid\n" +
		strings.Repeat("b", 2*MaxLineBytes) + "\nlast line\n"
	one := NewHub(t.TempDir())
	w, _ := one.Writer(1)
	writeAll(t, w, output)
	w.Close()
	want, _ := os.ReadFile(filepath.Join(one.Dir(1), logFileName))

	rng := rand.New(rand.NewPCG(1, 2))
	for _, stop := range []int{0, 3, 7, 100, MaxLineBytes + 5, MaxLineBytes + 18, len(output) - 4, len(output)} {
		h := NewHub(t.TempDir())
		w, _ := h.Writer(1)
		writeChunks(t, w, output[:stop], rng)
		// The server stops: the lines written are in the file, a partial
		// one is left for the next server to write whole.
		w.(*lineWriter).Abandon()
		lines, _, err := h.Lines(1)
		if err != nil {
			t.Fatal(err)
		}
		w, _ = h.Writer(1)
		writeChunks(t, SkipLines(w, lines), output, rng)
		w.Close()
		got, _ := os.ReadFile(filepath.Join(h.Dir(1), logFileName))
		if string(got) != string(want) {
			t.Errorf("stopped after %d bytes (%d lines): the file differs (%d bytes, want %d)", stop, lines, len(got), len(want))
		}
	}
}

func writeChunks(t *testing.T, w interface{ Write([]byte) (int, error) }, s string, rng *rand.Rand) {
	t.Helper()
	for len(s) > 0 {
		n := min(1+rng.IntN(MaxLineBytes/2), len(s))
		if _, err := w.Write([]byte(s[:n])); err != nil {
			t.Fatal(err)
		}
		s = s[n:]
	}
}
