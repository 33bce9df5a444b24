package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/registry"
	"imagehub/handlers"
	"imagehub/store"
)

func TestParseAllowCIDRs(t *testing.T) {
	got, err := parseAllowCIDRs(" 10.20.0.0/16, 192.168.7.9/24 ")
	if want := []string{"10.20.0.0/16", "192.168.7.0/24"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("parseAllowCIDRs = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"10.0.0.0", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/0", "128.0.0.0/1", "fe80::/10", "::/0"} {
		if _, err := parseAllowCIDRs(bad); err == nil || !strings.Contains(err.Error(), "--build-allow-cidr") {
			t.Errorf("parseAllowCIDRs(%q) = %v, want a refusal", bad, err)
		}
	}
}

func TestPushSecretNeedsRegistry(t *testing.T) {
	_, err := parseServeFlags([]string{"--push-secret", "team"})
	if err == nil || !strings.Contains(err.Error(), "--registry") {
		t.Errorf("--push-secret without --registry: %v, want refused", err)
	}
	if _, err := parseServeFlags([]string{"--registry", "registry.test/team", "--push-secret", "team"}); err != nil {
		t.Errorf("--registry with --push-secret: %v", err)
	}
}

// startTestRegistry runs app.startRegistry on a data folder, as serve does.
func startTestRegistry(t *testing.T, dir string) *app {
	t.Helper()
	a := &app{cfg: serveConfig{registryAddr: "127.0.0.1:0"}, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var err error
	if a.data, a.store, err = openDataDir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.store.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := a.startRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestEmbeddedRegistryAccounts: serve generates the registry's accounts once
// into the data folder (0600), pushes with the push account, offers the
// pull-only account as the ready pull secret that built images get, and the
// registry refuses anonymous requests.
func TestEmbeddedRegistryAccounts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a := startTestRegistry(t, dir)
	path := filepath.Join(dir, registryAccountsFile)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("accounts file: %v %v, want mode 0600", fi, err)
	}
	acc, err := registry.ReadAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSuffix(a.prefix, "/imagehub")
	if a.pushAuth == nil || a.pushAuth.Password != acc.Push.Password || a.registryPull == nil || a.registryPull.Password != acc.Pull.Password {
		t.Errorf("app credentials: push %+v pull %+v", a.pushAuth, a.registryPull)
	}
	if a.pullSecret != embeddedPullSecret {
		t.Errorf("built images' pull secret = %q, want %q", a.pullSecret, embeddedPullSecret)
	}
	gotHost, user, pass, err := a.store.SecretAuth(context.Background(), embeddedPullSecret)
	if err != nil || gotHost != host || user != acc.Pull.Username || pass != acc.Pull.Password {
		t.Errorf("pull secret = %q %q %q %v, want the pull account for %s", gotHost, user, pass, err, host)
	}
	res, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET /v2/ = %d, want 401", res.StatusCode)
	}

	t.Run("a restart keeps the accounts and moves the secret to the new address", func(t *testing.T) {
		a.store.Close()
		again := startTestRegistry(t, dir)
		if *again.pushAuth != *a.pushAuth || *again.registryPull != *a.registryPull {
			t.Error("the accounts changed across a restart")
		}
		newHost := strings.TrimSuffix(again.prefix, "/imagehub")
		if gotHost, _, _, err := again.store.SecretAuth(context.Background(), embeddedPullSecret); err != nil || gotHost != newHost {
			t.Errorf("pull secret host %q %v, want %s", gotHost, err, newHost)
		}
	})
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"50MiB", 50 << 20, true},
		{"512KiB", 512 << 10, true},
		{"1GiB", 1 << 30, true},
		{" 2 MiB ", 2 << 20, true},
		{"1048576", 1 << 20, true},
		{"50MB", 0, false},
		{"-1KiB", 0, false},
		{"", 0, false},
		{"9999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseServeFlagsMaxLogSize(t *testing.T) {
	c, err := parseServeFlags(nil)
	if err != nil || c.maxLogSize != 50<<20 {
		t.Errorf("default: %d, %v; want 50 MiB", c.maxLogSize, err)
	}
	t.Setenv("IMAGEHUB_MAX_LOG_SIZE", "8MiB")
	if c, err = parseServeFlags(nil); err != nil || c.maxLogSize != 8<<20 {
		t.Errorf("from IMAGEHUB_MAX_LOG_SIZE: %d, %v; want 8 MiB", c.maxLogSize, err)
	}
	if c, err = parseServeFlags([]string{"--max-log-size", "1GiB"}); err != nil || c.maxLogSize != 1<<30 {
		t.Errorf("flag: %d, %v; want 1 GiB", c.maxLogSize, err)
	}
	for _, bad := range []string{"lots", "10"} {
		if _, err := parseServeFlags([]string{"--max-log-size", bad}); err == nil {
			t.Errorf("--max-log-size %s accepted", bad)
		}
	}
}

func TestParseServeFlagsGroupBuildLimit(t *testing.T) {
	if c, err := parseServeFlags(nil); err != nil || c.groupBuildLimit != 2 {
		t.Errorf("default: %d, %v; want 2", c.groupBuildLimit, err)
	}
	t.Setenv("IMAGEHUB_GROUP_BUILD_LIMIT", "0")
	if c, err := parseServeFlags(nil); err != nil || c.groupBuildLimit != 0 {
		t.Errorf("from IMAGEHUB_GROUP_BUILD_LIMIT: %d, %v; want 0", c.groupBuildLimit, err)
	}
	if _, err := parseServeFlags([]string{"--group-build-limit", "-1"}); err == nil {
		t.Error("--group-build-limit -1 accepted")
	}
}

func TestParseServeFlagsLogViewers(t *testing.T) {
	c, err := parseServeFlags(nil)
	if err != nil || c.viewersPerBuild != 20 || c.viewersPerUser != 10 {
		t.Errorf("defaults: %d per build, %d per user, %v; want 20 and 10", c.viewersPerBuild, c.viewersPerUser, err)
	}
	t.Setenv("IMAGEHUB_LOG_VIEWERS_PER_USER", "3")
	if c, err = parseServeFlags([]string{"--log-viewers-per-build", "5"}); err != nil || c.viewersPerBuild != 5 || c.viewersPerUser != 3 {
		t.Errorf("set: %d per build, %d per user, %v; want 5 and 3", c.viewersPerBuild, c.viewersPerUser, err)
	}
	if _, err := parseServeFlags([]string{"--log-viewers-per-build", "0"}); err == nil {
		t.Error("--log-viewers-per-build 0 accepted")
	}
}

// startServing runs serveHTTP on a loopback listener with timeouts t until
// the test ends, and returns its address.
func startServing(t *testing.T, h http.Handler, to httpTimeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, ln, h, to) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveHTTP: %v", err)
		}
	})
	return ln.Addr().String()
}

// closedAfter waits for the server to close conn (a read that ends) and
// returns how long that took from start; it fails the test after limit.
func closedAfter(t *testing.T, conn net.Conn, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	conn.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still holds the connection after %s", limit)
	}
	return time.Since(start)
}

// TestServeHTTPCutsSlowHeaders plays slowloris: a client that sends its
// headers a few bytes at a time, never ending them. ReadHeaderTimeout cuts
// it, though it keeps sending, and no handler runs; other clients are served.
func TestServeHTTPCutsSlowHeaders(t *testing.T) {
	var handled atomic.Int64
	addr := startServing(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		io.WriteString(w, "ok")
	}), httpTimeouts{readHeader: 300 * time.Millisecond, read: 5 * time.Second, idle: 5 * time.Second, write: 5 * time.Second})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: imagehub\r\n")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := fmt.Fprintf(conn, "X-Slow-%d: a\r\n", i); err != nil {
				return
			}
		}
	}()
	took := closedAfter(t, conn, start, 5*time.Second)
	if took < 250*time.Millisecond {
		t.Errorf("cut after %s, before ReadHeaderTimeout", took)
	}
	if handled.Load() != 0 {
		t.Error("a handler ran for headers that never ended")
	}
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("a normal client: %d", res.StatusCode)
	}
}

// TestServeHTTPCutsSlowBody: a client that sends its body a byte at a time
// is cut by ReadTimeout; the handler sees its read fail.
func TestServeHTTPCutsSlowBody(t *testing.T) {
	readErr := make(chan error, 1)
	addr := startServing(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}), httpTimeouts{readHeader: 5 * time.Second, read: 500 * time.Millisecond, idle: 5 * time.Second, write: 5 * time.Second})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: imagehub\r\nContent-Length: 1000\r\n\r\n")
	go func() {
		for range 1000 {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.WriteString(conn, "x"); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("the handler read the whole slow body")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the slow body was not cut")
	}
	if took := closedAfter(t, conn, start, 5*time.Second); took < 400*time.Millisecond {
		t.Errorf("cut after %s, before ReadTimeout", took)
	}
}

// TestServeHTTPClosesIdleConnections: a kept-alive connection that sends no
// next request is closed after IdleTimeout.
func TestServeHTTPClosesIdleConnections(t *testing.T) {
	addr := startServing(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), httpTimeouts{readHeader: 5 * time.Second, read: 5 * time.Second, idle: 300 * time.Millisecond, write: 5 * time.Second})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: imagehub\r\n\r\n")
	r := bufio.NewReader(conn)
	res, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	start := time.Now()
	conn.SetReadDeadline(start.Add(5 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v, want the connection closed", err)
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("closed after %s, before IdleTimeout", took)
	}
}

// TestServeHTTPWriteDeadline: an answer to a client that reads nothing is
// cut by the per-request write deadline.
func TestServeHTTPWriteDeadline(t *testing.T) {
	writeErr := make(chan error, 1)
	addr := startServing(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range 1 << 10 { // 1 GiB: far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}), httpTimeouts{readHeader: 5 * time.Second, read: 5 * time.Second, idle: 5 * time.Second, write: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: imagehub\r\n\r\n") // and read nothing
	select {
	case err := <-writeErr:
		if err == nil {
			t.Error("the whole answer was written to a client that reads nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write to a client that reads nothing was not cut")
	}
}

// TestServeHTTPLogStreamOutlivesTimeouts follows a live build log over SSE
// for several times every timeout of the server: the stream is not cut, it
// gets every line and the done event.
func TestServeHTTPLogStreamOutlivesTimeouts(t *testing.T) {
	hub := buildlog.NewHub(t.TempDir())
	addr := startServing(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := handlers.StreamLog(w, r, hub, 1, 100*time.Millisecond); err != nil {
			t.Errorf("StreamLog: %v", err)
		}
	}), httpTimeouts{readHeader: 200 * time.Millisecond, read: 200 * time.Millisecond, idle: 200 * time.Millisecond, write: 200 * time.Millisecond})
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	go func() {
		w, err := hub.Writer(1)
		if err != nil {
			t.Error(err)
			return
		}
		for i := 1; i <= 10; i++ {
			time.Sleep(150 * time.Millisecond) // 1.5 s in all
			fmt.Fprintf(w, "line %d\n", i)
		}
		w.Close()
		hub.Close(1, store.BuildSucceeded)
	}()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("the stream was cut: %v\n%s", err, body)
	}
	text := string(body)
	if !strings.Contains(text, "id: 10\ndata: line 10\n") || !strings.Contains(text, "event: done\n") {
		t.Errorf("the stream ended early:\n%s", text)
	}
}

func TestParseServeFlagsDisk(t *testing.T) {
	c, err := parseServeFlags(nil)
	want := diskSettings{keepBuilds: 10, cacheSize: 20 << 30, minFreeDisk: 5 << 30, gcInterval: 24 * time.Hour}
	if err != nil || c.disk != want {
		t.Errorf("defaults: %+v, %v; want %+v", c.disk, err, want)
	}
	t.Setenv("IMAGEHUB_CACHE_SIZE", "512MiB")
	c, err = parseServeFlags([]string{"--keep-builds", "0", "--min-free-disk", "0", "--gc-interval", "1h"})
	want = diskSettings{keepBuilds: 0, cacheSize: 512 << 20, minFreeDisk: 0, gcInterval: time.Hour}
	if err != nil || c.disk != want {
		t.Errorf("set: %+v, %v; want %+v", c.disk, err, want)
	}
	for _, bad := range [][]string{{"--keep-builds", "-1"}, {"--cache-size", "big"}, {"--min-free-disk", "-5GiB"}, {"--gc-interval", "-1h"}} {
		if _, err := parseServeFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestParseServeFlagsBaseCheckInterval(t *testing.T) {
	if c, err := parseServeFlags(nil); err != nil || c.baseCheckInterval != 6*time.Hour {
		t.Errorf("default: %s, %v; want 6h", c.baseCheckInterval, err)
	}
	t.Setenv("IMAGEHUB_BASE_CHECK_INTERVAL", "30m")
	if c, err := parseServeFlags(nil); err != nil || c.baseCheckInterval != 30*time.Minute {
		t.Errorf("from the environment: %s, %v; want 30m", c.baseCheckInterval, err)
	}
	if c, err := parseServeFlags([]string{"--base-check-interval", "0"}); err != nil || c.baseCheckInterval != 0 {
		t.Errorf("off: %s, %v; want 0", c.baseCheckInterval, err)
	}
	if _, err := parseServeFlags([]string{"--base-check-interval", "-1h"}); err == nil {
		t.Error("a negative interval accepted")
	}
}
