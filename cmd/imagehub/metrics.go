package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"imagehub/handlers"
	"imagehub/handlers/metrics"
	"imagehub/store"
)

// newLogger is the server's log on w, in the format --log-format names:
// "json" (a JSON object a line) or "text".
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// watchMetrics gives the metrics their gauges: the builds queued in the
// store and running in the queue, the web layer's live log streams, and the
// disk used by the parts of the data folder.
func (a *app) watchMetrics(srv *handlers.Server) {
	db := a.data.path(databaseFile)
	stg := storageOf(a.data, a.cfg.storageDriver)
	disk := map[string][]string{
		"database": {db, db + "-wal", db + "-shm"},
		"logs":     {a.data.path(buildsFolder)},
		"storage":  {stg.GraphRoot, stg.RunRoot, a.data.path(tmpFolder)},
	}
	if a.cfg.registry == "" {
		disk["registry"] = []string{a.data.path(registryFolder)}
	}
	a.metrics.Watch(metrics.Sources{
		Queued:     func(ctx context.Context) (int, error) { return a.store.CountBuilds(ctx, store.BuildQueued) },
		Running:    a.queue.Running,
		LogViewers: srv.LogViewers,
		Disk:       disk,
	})
}

// serveMetrics serves /metrics alone, to whoever reaches it, on
// --metrics-addr (when set) until ctx ends. The channel is closed once it
// has stopped.
func (a *app) serveMetrics(ctx context.Context, stdout io.Writer) (<-chan struct{}, error) {
	done := make(chan struct{})
	if a.cfg.metricsAddr == "" {
		close(done)
		return done, nil
	}
	ln, err := net.Listen("tcp", a.cfg.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	fmt.Fprintf(stdout, "imagehub metrics on http://%s/metrics\n", ln.Addr())
	go func() {
		defer close(done)
		if err := serveHTTP(ctx, ln, mux, defaultHTTPTimeouts()); err != nil {
			a.logger.Error("serving metrics", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return done, nil
}
