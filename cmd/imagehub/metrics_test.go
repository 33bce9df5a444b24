package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestParseServeFlagsLogFormatAndMetricsAddr(t *testing.T) {
	c, err := parseServeFlags(nil)
	if err != nil || c.logFormat != "text" || c.metricsAddr != "" {
		t.Errorf("defaults: %q, %q, %v; want text and no metrics address", c.logFormat, c.metricsAddr, err)
	}
	t.Setenv("IMAGEHUB_LOG_FORMAT", "json")
	t.Setenv("IMAGEHUB_METRICS_ADDR", "127.0.0.1:9090")
	if c, err = parseServeFlags(nil); err != nil || c.logFormat != "json" || c.metricsAddr != "127.0.0.1:9090" {
		t.Errorf("from IMAGEHUB_LOG_FORMAT and IMAGEHUB_METRICS_ADDR: %q, %q, %v", c.logFormat, c.metricsAddr, err)
	}
	for _, bad := range []string{"JSON", "logfmt", ""} {
		if _, err := parseServeFlags([]string{"--log-format", bad}); err == nil || !strings.Contains(err.Error(), "--log-format") {
			t.Errorf("--log-format %q: %v, want an error naming the flag", bad, err)
		}
	}
}

// TestServeMetricsAndJSONLog runs the binary with --metrics-addr and
// --log-format json: its own address serves /metrics to anyone, and nothing
// else; the main address serves them to an administrator's token only; and
// the server's log is JSON, a line per request.
func TestServeMetricsAndJSONLog(t *testing.T) {
	metricsAddr := freeAddr(t)
	s := &server{t: t, data: t.TempDir(), addr: freeAddr(t), regAdr: freeAddr(t),
		args: []string{"--metrics-addr", metricsAddr, "--log-format", "json"}}
	s.start()

	res, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics on --metrics-addr without a token: %d, want 200", res.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]float64{}
	for _, m := range fams["imagehub_disk_used_bytes"].GetMetric() {
		parts[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	for _, part := range []string{"database", "logs", "registry", "storage"} {
		if _, ok := parts[part]; !ok {
			t.Errorf("no disk figure of %s: %v", part, parts)
		}
	}
	if parts["database"] <= 0 {
		t.Errorf("the database uses %v bytes", parts["database"])
	}
	for _, name := range []string{"imagehub_builds_queued", "imagehub_builds_running", "imagehub_log_viewers", "imagehub_builds_finished_total"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	for _, path := range []string{"/", "/healthz", "/api/v1/images"} {
		res, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on --metrics-addr: %d, want 404", path, res.StatusCode)
		}
	}

	for _, c := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {s.token, http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/metrics", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("GET /metrics on --addr with token %t: %d, want %d", c.token != "", res.StatusCode, c.want)
		}
	}
	s.stop()

	var requests []map[string]any
	for _, line := range strings.Split(s.out.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // what the server prints on standard output
		}
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("a log line is not JSON: %v\n%s", err, line)
		}
		if entry["msg"] == "request" && entry["route"] == "/metrics" {
			requests = append(requests, entry)
		}
	}
	if len(requests) != 2 {
		t.Fatalf("%d request lines of /metrics on --addr, want 2:\n%s", len(requests), s.out)
	}
	if r := requests[0]; r["status"] != 401.0 || r["user"] != nil || r["client"] != "127.0.0.1" || r["path"] != "/metrics" {
		t.Errorf("anonymous request: %v", r)
	}
	if r := requests[1]; r["status"] != 200.0 || r["user"] != "admin" || r["bytes"].(float64) <= 0 {
		t.Errorf("admin's request: %v", r)
	}
	if strings.Contains(s.out.String(), s.token) {
		t.Error("the log holds the token")
	}
}
