package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/queue"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
	"imagehub/handlers"
	"imagehub/handlers/metrics"
	"imagehub/store"
)

// pushTime is how long the fake worker's push lasts.
const pushTime = 20 * time.Millisecond

// fakeRunner's first worker builds and pushes; the others run until they
// are cancelled.
type fakeRunner struct {
	mu      sync.Mutex
	started int
}

func (r *fakeRunner) Start(context.Context, workerspec.Spec, string) (queue.Job, error) {
	r.mu.Lock()
	r.started++
	first := r.started == 1
	r.mu.Unlock()
	outR, outW := io.Pipe()
	j := &fakeJob{out: outR, outW: outW, events: make(chan workerspec.Event, 4), exited: make(chan struct{})}
	if first {
		go func() {
			j.send(workerspec.Event{Phase: workerspec.PhasePushing})
			time.Sleep(pushTime)
			j.send(workerspec.Event{Phase: workerspec.PhaseDone, Digest: "sha256:" + strings.Repeat("ab", 32)})
			j.exit()
		}()
	}
	return j, nil
}

func (r *fakeRunner) Reap(context.Context, int64, string) error { return nil }

type fakeJob struct {
	out    *io.PipeReader
	outW   *io.PipeWriter
	events chan workerspec.Event
	exited chan struct{}
	mu     sync.Mutex
	done   bool
}

func (j *fakeJob) Output() io.Reader               { return j.out }
func (j *fakeJob) Events() <-chan workerspec.Event { return j.events }
func (j *fakeJob) Cancel()                         { j.exit() }
func (j *fakeJob) Wait() error                     { <-j.exited; return nil }

func (j *fakeJob) send(ev workerspec.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.done {
		j.events <- ev
	}
}

func (j *fakeJob) exit() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.done {
		j.done = true
		j.outW.Close()
		close(j.events)
		close(j.exited)
	}
}

// world is the web layer and the queue on real SQLite, served over real
// HTTP, with the metrics wired as `imagehub serve` wires them.
type world struct {
	t      *testing.T
	st     *store.Store
	web    *httptest.Server
	srv    *handlers.Server
	q      *queue.Queue
	tokens map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "imagehub.db")
	st, err := store.Open(db, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, st: st, tokens: map[string]string{}}
	ctx := context.Background()
	for _, u := range []*store.User{{Username: "admin", Password: "correct-horse-battery", Admin: true}, {Username: "alice", Password: "correct-horse-battery"}} {
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if w.tokens[u.Username], _, err = st.CreateToken(ctx, u.Username, "scrape", store.ScopeRead); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	logDir := filepath.Join(dir, "builds")
	logs := buildlog.NewHub(logDir)
	m := metrics.New(logger)
	q := queue.New(queue.Config{Store: st, Runner: &fakeRunner{}, Logs: logs, Concurrency: 1, Observer: m,
		TmpRoot: t.TempDir(), Storage: workerspec.Storage{GraphRoot: "/g", RunRoot: "/r"}, Poll: time.Hour, Logger: logger})
	srv, err := handlers.New(handlers.Config{
		Store: st, HashKey: make([]byte, 32), BlockKey: make([]byte, 32), Logger: logger,
		Inspect: func(context.Context, string, *remote.Auth, bool) (remote.ImageInfo, error) {
			return remote.ImageInfo{}, errors.New("no registry in this test")
		},
		Normalize: remote.NormalizeReference, Builds: q, Logs: logs, RegistryPrefix: "registry.test/imagehub",
		Requests: m, Metrics: m.Handler(),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Watch(metrics.Sources{
		Queued:     func(ctx context.Context) (int, error) { return st.CountBuilds(ctx, store.BuildQueued) },
		Running:    q.Running,
		LogViewers: srv.LogViewers,
		Disk:       map[string][]string{"database": {db, db + "-wal"}, "logs": {logDir}},
	})
	w.srv, w.q = srv, q
	w.web = httptest.NewServer(srv.Handler())
	t.Cleanup(w.web.Close)
	qctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { q.Run(qctx); close(stopped) }()
	t.Cleanup(func() { stop(); <-stopped })
	return w
}

// request sends a request as user ("" for nobody) and returns the answer,
// its body unread.
func (w *world) request(method, path, user string, header ...string) *http.Response {
	w.t.Helper()
	req, err := http.NewRequest(method, w.web.URL+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+w.tokens[user])
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { res.Body.Close() })
	return res
}

// get sends a request as user and checks its status.
func (w *world) get(path, user string, want int) {
	w.t.Helper()
	res := w.request(http.MethodGet, path, user)
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != want {
		w.t.Fatalf("GET %s as %q: %d, want %d", path, user, res.StatusCode, want)
	}
}

// scrape reads /metrics as admin with Prometheus' own text parser.
func (w *world) scrape() families {
	w.t.Helper()
	res := w.request(http.MethodGet, "/metrics", "admin")
	if res.StatusCode != http.StatusOK {
		w.t.Fatalf("GET /metrics as admin: %d", res.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		w.t.Fatalf("parsing the metrics: %v", err)
	}
	return fams
}

// queueBuild makes a System image with a recipe and queues its build.
func (w *world) queueBuild(name string) *store.Build {
	w.t.Helper()
	ctx := context.Background()
	r := store.Recipe{BaseImage: "busybox", Pip: "numpy"}
	if err := w.st.CreateImage(ctx, &store.Image{DisplayName: name, Type: store.TypeCPU, Global: true, Recipe: &r}); err != nil {
		w.t.Fatal(err)
	}
	b, err := w.st.CreateBuild(ctx, name, r, "registry.test/imagehub/"+name+":1")
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

type families map[string]*dto.MetricFamily

// metric is the sample of family name with the labels given as name, value
// pairs, or nil.
func (f families) metric(name string, labels ...string) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if match {
			return m
		}
	}
	return nil
}

// value is a counter's or a gauge's value, or a histogram's count; -1 when
// the sample is missing.
func (f families) value(name string, labels ...string) float64 {
	m := f.metric(name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// TestMetricsScrape runs a build through the queue, follows another's log
// and makes requests, then scrapes /metrics as an administrator: every
// family is there with the values those made, requests are counted by
// route pattern (never the path), and a later request moves its count.
func TestMetricsScrape(t *testing.T) {
	w := newWorld(t)
	w.get("/metrics", "", http.StatusUnauthorized)
	w.get("/metrics", "alice", http.StatusForbidden)
	w.get("/api/v1/images", "admin", http.StatusOK)

	done := w.queueBuild("done")
	stuck := w.queueBuild("stuck")
	w.queueBuild("waiting")
	w.q.Notify()
	deadline := time.Now().Add(10 * time.Second)
	// The finished build is counted before it leaves the queue's slot, so
	// "one running" alone may still be that build: wait for the next to be
	// marked running too.
	var fams families
	for {
		fams = w.scrape()
		b, err := w.st.FindBuild(context.Background(), stuck.ID)
		if err != nil {
			t.Fatal(err)
		}
		if fams.value("imagehub_builds_finished_total", "status", "succeeded") == 1 && fams.value("imagehub_builds_running") == 1 &&
			b.Status == store.BuildRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the build did not finish, or the next did not start: succeeded %v, running %v, build %d %s",
				fams.value("imagehub_builds_finished_total", "status", "succeeded"), fams.value("imagehub_builds_running"), stuck.ID, b.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stream := w.request(http.MethodGet, fmt.Sprintf("/api/v1/builds/%d/log", stuck.ID), "admin", "Accept", "text/event-stream")
	if _, err := bufio.NewReader(stream.Body).ReadString('\n'); err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("log stream: %d %v", stream.StatusCode, err)
	}
	w.get(fmt.Sprintf("/api/v1/builds/%d", done.ID), "admin", http.StatusOK)
	w.request("PURGE", "/api/v1/images", "admin")

	fams = w.scrape()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"imagehub_builds_finished_total", []string{"status", "succeeded"}, 1},
		{"imagehub_builds_finished_total", []string{"status", "failed"}, 0},
		{"imagehub_build_duration_seconds", []string{"status", "succeeded"}, 1},
		{"imagehub_push_duration_seconds", nil, 1},
		{"imagehub_builds_queued", nil, 1},
		{"imagehub_builds_running", nil, 1},
		{"imagehub_log_viewers", nil, 1},
		{"imagehub_http_request_duration_seconds", []string{"route", "/metrics", "method", "GET", "status", "401"}, 1},
		{"imagehub_http_request_duration_seconds", []string{"route", "/metrics", "method", "GET", "status", "403"}, 1},
		{"imagehub_http_request_duration_seconds", []string{"route", "/api/v1/images", "method", "GET", "status", "200"}, 1},
		{"imagehub_http_request_duration_seconds", []string{"route", "/api/v1/builds/:id", "method", "GET", "status", "200"}, 1},
		{"imagehub_http_request_duration_seconds", []string{"route", "/api/v1/images", "method", "other", "status", "405"}, 1},
	} {
		if got := fams.value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if h := fams.metric("imagehub_push_duration_seconds").GetHistogram(); h.GetSampleSum() <= 0 {
		t.Errorf("push took %vs, want some time", h.GetSampleSum())
	}
	if h := fams.metric("imagehub_build_duration_seconds", "status", "succeeded").GetHistogram(); h.GetSampleSum() < pushTime.Seconds() {
		t.Errorf("build took %vs, want at least %v", h.GetSampleSum(), pushTime)
	}
	// The figures are those of the first scrape (kept 30 s), when the
	// database alone was sure to be there.
	if got := fams.value("imagehub_disk_used_bytes", "part", "database"); got <= 0 {
		t.Errorf("disk used by the database: %v, want some", got)
	}
	if got := fams.value("imagehub_disk_used_bytes", "part", "logs"); got < 0 {
		t.Error("no figure of the disk used by logs")
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	routes := map[string]bool{handlers.UnmatchedRoute: true}
	for _, r := range w.srv.Routes() {
		routes[r.Path] = true
	}
	for _, m := range fams["imagehub_http_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && !routes[l.GetValue()] {
				t.Errorf("route label %q is no route of the table", l.GetValue())
			}
		}
	}

	w.get("/api/v1/images", "admin", http.StatusOK)
	if got := w.scrape().value("imagehub_http_request_duration_seconds", "route", "/api/v1/images", "method", "GET", "status", "200"); got != 2 {
		t.Errorf("after a second request: %v, want 2", got)
	}
}
