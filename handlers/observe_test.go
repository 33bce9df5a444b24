package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// lockedLog is a log that the server's goroutines write to.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// waitLines waits until the log holds n lines and returns them.
func (l *lockedLog) waitLines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		lines := strings.Split(strings.TrimSuffix(l.b.String(), "\n"), "\n")
		l.mu.Unlock()
		if len(lines) >= n || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// servedRequest is what a RequestObserver was told.
type servedRequest struct {
	method, route string
	status        int
}

type requestRecorder struct {
	mu     sync.Mutex
	served []servedRequest
}

func (r *requestRecorder) RequestServed(method, route string, status int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.served = append(r.served, servedRequest{method, route, status})
}

// requestLine is one line of the JSON request log.
type requestLine struct {
	Level      string   `json:"level"`
	Msg        string   `json:"msg"`
	Method     string   `json:"method"`
	Route      string   `json:"route"`
	Path       string   `json:"path"`
	Status     int      `json:"status"`
	DurationMS *float64 `json:"duration_ms"`
	Bytes      int      `json:"bytes"`
	Client     string   `json:"client"`
	User       string   `json:"user"`
}

// TestRequestLog: each request is one JSON line with its route pattern, path
// without the query, status, duration, size, the client named by a trusted
// proxy and the user; the observer is told the same. Neither the query nor
// the token reach the log.
func TestRequestLog(t *testing.T) {
	var out lockedLog
	rec := &requestRecorder{}
	env := newTestEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&out, nil))
		c.Requests = rec
		c.TrustedProxies = []*net.IPNet{{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)}}
	})
	img := env.mustCreateImage(testImage("seen"))
	admin := env.withToken("admin", store.ScopeRead)
	alice := env.withToken("alice", store.ScopeRead)
	proxied := map[string]string{"X-Forwarded-For": "203.0.113.7"}
	type call struct {
		c      *client
		path   string
		header map[string]string
		want   requestLine
	}
	calls := []call{
		{env.anonymous(), "/healthz?token=in-the-query", proxied,
			requestLine{Method: "GET", Route: "/healthz", Path: "/healthz", Status: 200, Client: "203.0.113.7"}},
		{admin, "/api/v1/images/" + img.Name, nil,
			requestLine{Method: "GET", Route: "/api/v1/images/:name", Path: "/api/v1/images/" + img.Name, Status: 200, Client: "127.0.0.1", User: "admin"}},
		{alice, "/api/v1/users", nil,
			requestLine{Method: "GET", Route: "/api/v1/users", Path: "/api/v1/users", Status: 403, Client: "127.0.0.1", User: "alice"}},
		{env.anonymous(), "/no/such/page", nil,
			requestLine{Method: "GET", Route: UnmatchedRoute, Path: "/no/such/page", Status: 404, Client: "127.0.0.1"}},
	}
	var bodyLens []int
	for _, c := range calls {
		res := c.c.request(http.MethodGet, c.path, nil, c.header)
		bodyLens = append(bodyLens, len(readAll(t, res.Body)))
		if res.StatusCode != c.want.Status {
			t.Fatalf("GET %s: %d, want %d", c.path, res.StatusCode, c.want.Status)
		}
	}
	lines := out.waitLines(t, len(calls))
	if len(lines) != len(calls) {
		t.Fatalf("%d log lines for %d requests:\n%s", len(lines), len(calls), strings.Join(lines, "\n"))
	}
	for i, line := range lines {
		for _, secret := range []string{"in-the-query", admin.bearer, alice.bearer} {
			if strings.Contains(line, secret) {
				t.Errorf("line %d holds %q: %s", i, secret, line)
			}
		}
		var got requestLine
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, line)
		}
		if got.DurationMS == nil || *got.DurationMS < 0 {
			t.Errorf("line %d: duration_ms %v, want a duration", i, got.DurationMS)
		}
		if got.Bytes != bodyLens[i] {
			t.Errorf("line %d: bytes %d, but the client read %d", i, got.Bytes, bodyLens[i])
		}
		want := calls[i].want
		want.Level, want.Msg, want.DurationMS, want.Bytes = "INFO", "request", got.DurationMS, got.Bytes
		if got != want {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, c := range calls {
		if want := (servedRequest{c.want.Method, c.want.Route, c.want.Status}); i >= len(rec.served) || rec.served[i] != want {
			t.Errorf("observer was told %+v, want %+v at %d", rec.served, want, i)
		}
	}
}

// TestClientGoneIsNotAServerError: a request whose client went away while it
// was served fails in the store with the cancelled context's error, or
// while its answer is written with a broken pipe; that is no fault of the
// server's: the request is recorded with 499 (nginx's "client closed
// request"), nothing is written, and nothing is logged as an error. An
// internal error of a client still there stays a 500.
func TestClientGoneIsNotAServerError(t *testing.T) {
	var out lockedLog
	rec := &requestRecorder{}
	env := newTestEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&out, nil))
		c.Requests = rec
	})
	// serve runs a handler that fails with the error fail makes; its
	// argument cancels the request's context, as a client going away does.
	serve := func(fail func(cancel func(), ctx context.Context) error) *httptest.ResponseRecorder {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/admin/images", nil)
		w := httptest.NewRecorder()
		c := env.server.echo.NewContext(req, w)
		c.SetPath("/admin/images")
		env.server.observeRequest(func(c echo.Context) error { return fail(cancel, c.Request().Context()) })(c)
		return w
	}
	gone := map[string]func(func(), context.Context) error{
		// What a store query answers once its context is done.
		"cancelled": func(cancel func(), ctx context.Context) error {
			cancel()
			return fmt.Errorf("listing images: %w", ctx.Err())
		},
		"broken pipe": func(func(), context.Context) error {
			return fmt.Errorf("write tcp: %w", &net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)})
		},
	}
	for name, fail := range gone {
		if w := serve(fail); w.Code >= 500 || w.Body.Len() > 0 {
			t.Errorf("%s: a client that went away was answered %d %q", name, w.Code, w.Body)
		}
	}
	lines := out.waitLines(t, len(gone))
	if log := strings.Join(lines, "\n"); strings.Contains(log, `"level":"ERROR"`) {
		t.Errorf("a client that went away is logged as an error:\n%s", log)
	}
	if w := serve(func(func(), context.Context) error { return errors.New("disk on fire") }); w.Code != http.StatusInternalServerError {
		t.Errorf("an internal error was answered %d, want 500", w.Code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []servedRequest{{"GET", "/admin/images", StatusClientClosed}, {"GET", "/admin/images", StatusClientClosed}, {"GET", "/admin/images", http.StatusInternalServerError}}
	if !slices.Equal(rec.served, want) {
		t.Errorf("observer was told %+v, want %+v", rec.served, want)
	}
}
