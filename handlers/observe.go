package handlers

import (
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// RequestObserver is told of every request the server answered (the
// metrics). Its method is called on the request's goroutine and must return
// at once.
type RequestObserver interface {
	// RequestServed tells that a request was answered with status after
	// took. route is the route table's pattern that matched
	// ("/admin/images/:name"), never the path, or UnmatchedRoute.
	RequestServed(method, route string, status int, took time.Duration)
}

// UnmatchedRoute is the route of a request that matched no route of the
// table. No pattern is named so: they all begin with "/".
const UnmatchedRoute = "unmatched"

// nopRequests is the RequestObserver of a server that is given none.
type nopRequests struct{}

func (nopRequests) RequestServed(string, string, int, time.Duration) {}

// observeRequest answers a request, then tells the observer and writes one
// line to the log: method, route pattern, path (never the query, which may
// hold what the client typed), status, duration, bytes written, the
// client's address (trusted proxies considered) and the user, when signed
// in. Headers, which carry tokens and cookies, are never logged. An error
// is answered here, so that its status is the one logged.
func (s *Server) observeRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		took := time.Since(start)
		req, res := c.Request(), c.Response()
		route := c.Path()
		if route == "" {
			route = UnmatchedRoute
		}
		s.requests.RequestServed(req.Method, route, res.Status, took)
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("route", route),
			slog.String("path", req.URL.Path),
			slog.Int("status", res.Status),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
			slog.Int64("bytes", res.Size),
			slog.String("client", c.RealIP()),
		}
		if id := currentIdentity(c); id != nil {
			attrs = append(attrs, slog.String("user", id.User.Username))
		}
		s.log.LogAttrs(req.Context(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}

// metricsPath is where the metrics are served.
const metricsPath = "/metrics"

// metrics serves the metrics (Config.Metrics) to administrators.
func (s *Server) metrics(c echo.Context) error {
	if s.metricsHandler == nil {
		return store.Errorf(store.ENOTFOUND, "This server keeps no metrics.")
	}
	s.metricsHandler.ServeHTTP(c.Response(), c.Request())
	return nil
}
