package registry

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// writeHtpasswd writes an htpasswd file with one user.
func writeHtpasswd(t *testing.T, user, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := WriteHtpasswd(path, map[string]string{user: password}); err != nil {
		t.Fatal(err)
	}
	return path
}

// newTestRegistry serves a registry for one test.
func newTestRegistry(t *testing.T, htpasswd string) *Server {
	t.Helper()
	r, err := Start(context.Background(), "127.0.0.1:0", filepath.Join(t.TempDir(), "registry"), htpasswd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// getV2 asks a registry for its API root and returns the HTTP status.
func getV2(t *testing.T, addr, user, password string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK && res.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("API version header = %q", res.Header.Get("Docker-Distribution-API-Version"))
	}
	return res.StatusCode
}

func TestRegistryServesV2API(t *testing.T) {
	reg := newTestRegistry(t, "")
	if got, want := getV2(t, reg.Addr(), "", ""), http.StatusOK; got != want {
		t.Errorf("GET /v2/ = %d, want %d", got, want)
	}
}

func TestRegistryHtpasswd(t *testing.T) {
	reg := newTestRegistry(t, writeHtpasswd(t, "builder", "s3cret-registry-pw"))
	tests := []struct {
		name, user, password string
		want                 int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", "builder", "nope", http.StatusUnauthorized},
		{"right password", "builder", "s3cret-registry-pw", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := getV2(t, reg.Addr(), tt.user, tt.password); got != tt.want {
				t.Errorf("GET /v2/ = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRegistryRefusesMissingHtpasswd(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent")
	r, err := Start(context.Background(), "127.0.0.1:0", t.TempDir(), missing)
	if err == nil {
		r.Close()
		t.Fatal("Start with a missing htpasswd file succeeded")
	}
	if _, statErr := os.Stat(missing); statErr == nil {
		t.Error("a missing htpasswd file was created (with a random password)")
	}
}

func TestRegistryAddrInUse(t *testing.T) {
	reg := newTestRegistry(t, "")
	if r, err := Start(context.Background(), reg.Addr(), t.TempDir(), ""); err == nil {
		r.Close()
		t.Fatal("a second registry on the same address started")
	}
}

func TestRegistryStopsOnCloseAndOnContext(t *testing.T) {
	reg := newTestRegistry(t, "")
	if err := reg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := reg.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := http.Get("http://" + reg.Addr() + "/v2/"); err == nil {
		t.Error("registry still answers after Close")
	}

	ctx, cancel := context.WithCancel(context.Background())
	r, err := Start(ctx, "127.0.0.1:0", t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := http.Get("http://" + r.Addr() + "/v2/")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("registry still answers after its context ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRegistryLogFilter(t *testing.T) {
	var out bytes.Buffer
	logger := logrus.New()
	logger.SetOutput(&out)
	quietenRegistryLogs(logger)
	quietenRegistryLogs(logger)
	if got := logger.GetLevel(); got != logrus.WarnLevel {
		t.Errorf("level = %v, want warning", got)
	}
	if f, ok := logger.Formatter.(clientErrorFilter); !ok {
		t.Fatalf("formatter = %T", logger.Formatter)
	} else if _, twice := f.next.(clientErrorFilter); twice {
		t.Error("the filter was installed twice")
	}
	request := func(status any) *logrus.Entry {
		e := logger.WithField("http.request.id", "r1")
		if status != nil {
			e = e.WithField("http.response.status", status)
		}
		return e
	}
	request(404).Error("dropped: manifest unknown")
	request(nil).Warn("dropped: authentication challenge")
	request(401).Error("dropped: unauthorized")
	logger.Info("dropped: below warning")
	request(500).Error("kept: server error")
	logger.Warn("kept: not about a request")
	got := out.String()
	if strings.Contains(got, "dropped") {
		t.Errorf("client errors were logged:\n%s", got)
	}
	if strings.Count(got, "kept") != 2 {
		t.Errorf("server errors or other warnings were not logged:\n%s", got)
	}
}
