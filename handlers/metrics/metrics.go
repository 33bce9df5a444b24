// Package metrics keeps imagehub's Prometheus metrics in a registry of its
// own: what the build queue and the web layer tell it (it is their
// queue.Observer and handlers.RequestObserver, so that neither imports
// Prometheus), gauges read at each scrape (Sources), and the Go runtime's
// and the process's own. Handler serves them in the Prometheus text format.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"imagehub/store"
)

// namespace begins the name of every metric of imagehub's own.
const namespace = "imagehub"

// finalStatuses are the statuses a build ends with; each has its counter
// from the start, at 0.
var finalStatuses = []store.BuildStatus{store.BuildSucceeded, store.BuildFailed, store.BuildCancelled, store.BuildInterrupted}

// Metrics is the registry and the metrics that the queue and the web layer
// feed. It is safe for concurrent use.
type Metrics struct {
	reg           *prometheus.Registry
	log           *slog.Logger
	builds        *prometheus.CounterVec
	buildDuration *prometheus.HistogramVec
	pushDuration  prometheus.Histogram
	requests      *prometheus.HistogramVec
}

// New makes the registry with the counters and histograms; Watch adds the
// gauges once what they read exists. log gets the errors of scrapes.
func New(log *slog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: log,
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "builds_finished_total",
			Help: "Builds that reached a final status, by that status.",
		}, []string{"status"}),
		buildDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "build_duration_seconds",
			Help: "How long builds ran, from their start to their final status, by that status.",
			// 5 s to 2.8 h: an up-to-date check to a build at its deadline.
			Buckets: prometheus.ExponentialBuckets(5, 2, 12),
		}, []string{"status"}),
		pushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "push_duration_seconds",
			Help: "How long build workers took to push an image to the registry.",
			// 0.25 s to 8.5 min.
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 12),
		}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "How long HTTP requests took to answer, by route pattern, method and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "status"}),
	}
	for _, st := range finalStatuses {
		m.builds.WithLabelValues(string(st))
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.builds, m.buildDuration, m.pushDuration, m.requests)
	return m
}

// BuildFinished counts a build's final status and, for a build that ran in
// this process, how long it ran (queue.Observer).
func (m *Metrics) BuildFinished(st store.BuildStatus, ran time.Duration) {
	m.builds.WithLabelValues(string(st)).Inc()
	if ran > 0 {
		m.buildDuration.WithLabelValues(string(st)).Observe(ran.Seconds())
	}
}

// PushFinished records how long a push took (queue.Observer).
func (m *Metrics) PushFinished(took time.Duration) {
	m.pushDuration.Observe(took.Seconds())
}

// RequestServed records how long a request took (handlers.RequestObserver).
func (m *Metrics) RequestServed(method, route string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, methodLabel(method), strconv.Itoa(status)).Observe(took.Seconds())
}

// methodLabel is a request's method as a label: the methods of HTTP, and
// "other" for whatever else a client sends, so that no client can add
// series at will. Routes are patterns and statuses are the server's own.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// Handler serves the metrics in the Prometheus text format (or another
// format the scraper asks for). A gauge that cannot be read is left out and
// logged; the others are served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: printlnLogger{m.log}, ErrorHandling: promhttp.ContinueOnError,
	})
}

// printlnLogger gives promhttp the logger it wants.
type printlnLogger struct{ log *slog.Logger }

func (l printlnLogger) Println(v ...any) { l.log.Error("serving metrics: " + fmt.Sprint(v...)) }

// Sources are what the gauges read at each scrape; a nil one is left out.
type Sources struct {
	// Queued counts the builds waiting in the store.
	Queued func(ctx context.Context) (int, error)
	// Running counts the builds the queue runs now.
	Running func() int
	// LogViewers counts the live log streams open now.
	LogViewers func() int
	// Disk names the parts of the data folder whose disk use is measured,
	// each with its files and folders ("database": the SQLite files).
	Disk map[string][]string
}

// Watch adds the gauges that read src. Call it once, before serving.
func (m *Metrics) Watch(src Sources) {
	m.reg.MustRegister(&gauges{src: src, disk: newDiskUsage(src.Disk, diskMinAge, diskWait)})
}

// queuedTimeout bounds the count of queued builds at a scrape.
const queuedTimeout = 5 * time.Second

// The gauges, read at each scrape.
var (
	queuedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "builds_queued"),
		"Builds waiting for a free slot.", nil, nil)
	runningDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "builds_running"),
		"Builds running or pushing now.", nil, nil)
	viewersDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "log_viewers"),
		"Live build log streams (server-sent events) open now.", nil, nil)
	diskDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "disk_used_bytes"),
		"Disk space used by each part of the data folder, measured at most every 30 s.", []string{"part"}, nil)
)

// gauges is the collector of the gauges that read Sources.
type gauges struct {
	src  Sources
	disk *diskUsage
}

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queuedDesc, runningDesc, viewersDesc, diskDesc} {
		ch <- d
	}
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	if g.src.Queued != nil {
		ctx, cancel := context.WithTimeout(context.Background(), queuedTimeout)
		n, err := g.src.Queued(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(queuedDesc, fmt.Errorf("counting queued builds: %w", err))
		} else {
			ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(n))
		}
	}
	for desc, count := range map[*prometheus.Desc]func() int{runningDesc: g.src.Running, viewersDesc: g.src.LogViewers} {
		if count != nil {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(count()))
		}
	}
	for part, n := range g.disk.current() {
		ch <- prometheus.MustNewConstMetric(diskDesc, prometheus.GaugeValue, float64(n), part)
	}
}
