package handlers

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// scaleConcurrency is how many requests are in flight at once.
const scaleConcurrency = 8

var scaleRoutes = []scaleRoute{
	{name: "admin-images-page1", path: "/admin/images", as: adminSession},
	{name: "admin-images-page250", path: "/admin/images?page=250", as: adminSession},
	{name: "admin-images-live-search", path: "/admin/images?q=team+7", as: adminSession, htmx: true},
	{name: "api-images-page37", path: "/api/v1/images?perPage=100&page=37", as: adminToken},
	{name: "api-images-search", path: "/api/v1/images?q=number+99", as: adminToken},
	{name: "api-me-images", path: "/api/v1/me/images", as: userToken},
	{name: "api-group-selection", path: "/api/v1/groups/team-3/selection", as: userToken},
}

// BenchmarkScale serves an installation of a year (seedScale: 10,000
// images, 200 groups, a user in 5 groups) from a real SQLite file over real
// HTTP on 127.0.0.1, and measures the catalogue's busiest routes with b.N
// requests each, scaleConcurrency at a time (make bench: 2,000). Reported
// per route: the 95th percentile latency (p95-ms), the throughput (req/s)
// and the processor time of the process, server and client, per request
// (cpu-us/req: less sensitive than the others to what else the machine
// runs); and as ratios to the same figures of GET /healthz (no database,
// no session) measured right before in the same way: p95-x-baseline,
// req/s-of-baseline, cpu-x-baseline.
func BenchmarkScale(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds 10,000 images")
	}
	env := newScaleEnv(b)
	for _, r := range scaleRoutes {
		b.Run(r.name, func(b *testing.B) {
			base := env.load(b, b.N, env.request(scaleRoute{path: "/healthz"}))
			send := env.request(r)
			env.load(b, 100, send) // warm up: connections, caches
			b.ResetTimer()
			got := env.load(b, b.N, send)
			b.StopTimer()
			p95, baseP95 := percentile(got.latencies, 0.95), percentile(base.latencies, 0.95)
			b.ReportMetric(ms(p95), "p95-ms")
			b.ReportMetric(got.rps, "req/s")
			b.ReportMetric(got.cpu.Seconds()*1e6, "cpu-us/req")
			b.ReportMetric(float64(p95)/float64(max(baseP95, 1)), "p95-x-baseline")
			b.ReportMetric(got.rps/base.rps, "req/s-of-baseline")
			b.ReportMetric(got.cpu.Seconds()/base.cpu.Seconds(), "cpu-x-baseline")
		})
	}
}

// loadResult is what a run of requests measured.
type loadResult struct {
	latencies []time.Duration
	rps       float64
	// cpu is the processor time of the process (server and client) per request.
	cpu time.Duration
}

// load sends n requests, scaleConcurrency at a time, each read to its end;
// any answer but 200 fails the benchmark.
func (env *scaleEnv) load(b *testing.B, n int, newRequest func() (*http.Request, error)) loadResult {
	b.Helper()
	latencies := make([]time.Duration, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		failure atomic.Value
	)
	start, cpu0 := time.Now(), processCPU()
	for range scaleConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				t0 := time.Now()
				if err := env.do(newRequest); err != nil {
					failure.CompareAndSwap(nil, err)
					return
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	if err, _ := failure.Load().(error); err != nil {
		b.Fatal(err)
	}
	return loadResult{latencies: latencies, rps: float64(n) / elapsed.Seconds(), cpu: cpu / time.Duration(n)}
}

// do makes one request and reads the answer to its end.
func (env *scaleEnv) do(newRequest func() (*http.Request, error)) error {
	req, err := newRequest()
	if err != nil {
		return err
	}
	res, err := env.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d, want 200", req.URL.RequestURI(), res.StatusCode)
	}
	return nil
}

// percentile returns the p-th quantile (0 < p ≤ 1) of d; it sorts d.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(int(p*float64(len(d))), len(d)-1)]
}

// processCPU is the processor time this process has used, in user and
// kernel mode.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
