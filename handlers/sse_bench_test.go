package handlers

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"imagehub/store"
)

// BenchmarkSSE measures the latency from a line written to the log hub until
// it arrives at each viewer attached over real HTTP: one viewer (the
// baseline) and 200. Each line carries its write time; the next line is
// written once every viewer has the previous one, so the figures are the
// delivery latency, not a queue. Reported: p50 and p99 over every (line,
// viewer) pair, in milliseconds.
func BenchmarkSSE(b *testing.B) {
	for _, n := range []int{1, 200} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchmarkSSE(b, n) })
	}
}

func benchmarkSSE(b *testing.B, clients int) {
	s := newSSEServer(b, time.Hour)
	s.hub.BufferLines = 1 << 16
	w, err := s.hub.Writer(1)
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan time.Duration, clients)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}}
	for range clients {
		body := openBenchViewer(b, client, s.URL)
		go receiveStamps(body, got)
	}
	latencies := make([]time.Duration, 0, b.N*clients)
	b.ResetTimer()
	for range b.N {
		fmt.Fprintf(w, "%d\n", time.Now().UnixNano())
		for range clients {
			latencies = append(latencies, <-got)
		}
	}
	b.StopTimer()
	w.Close()
	s.hub.Close(1, store.BuildSucceeded)
	reportLatencies(b, latencies)
}

// openBenchViewer connects one viewer and waits for the stream to start.
func openBenchViewer(b *testing.B, client *http.Client, url string) io.ReadCloser {
	res, err := client.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { res.Body.Close() })
	return res.Body
}

// receiveStamps reads a viewer's events and sends how long ago each line
// was written.
func receiveStamps(body io.Reader, got chan<- time.Duration) {
	r := bufio.NewReader(body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		v, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if ns, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			got <- time.Since(time.Unix(0, ns))
		}
	}
}

// reportLatencies reports the median and the 99th percentile in ms.
func reportLatencies(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	pct := func(p float64) float64 {
		i := min(int(p*float64(len(d))), len(d)-1)
		return float64(d[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
