package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
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

// testAccounts are accounts with fixed passwords, for the tests.
var testAccounts = Accounts{
	Push: Account{Username: PushUser, Password: "push-password-of-the-tests"},
	Pull: Account{Username: PullUser, Password: "pull-password-of-the-tests"},
}

// newGuardedRegistry serves a registry with testAccounts for one test.
func newGuardedRegistry(t *testing.T) *Server {
	t.Helper()
	r, err := StartWithAccounts(context.Background(), "127.0.0.1:0", filepath.Join(t.TempDir(), "registry"), testAccounts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// client is who sends a request in these tests: an account, a wrong
// password, or nobody.
type client struct {
	name string
	acc  *Account
}

var (
	anonymous = client{"anonymous", nil}
	pusher    = client{"push account", &testAccounts.Push}
	puller    = client{"pull account", &testAccounts.Pull}
	guesser   = client{"push user, wrong password", &Account{Username: PushUser, Password: "push-password-of-the-testz"}}
	// swapped presents the push account's password as the pull user.
	swapped = client{"pull user with the push password", &Account{Username: PullUser, Password: testAccounts.Push.Password}}
)

// send makes one request as c and returns the response, its body read.
func send(t *testing.T, c client, method, url string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if c.acc != nil {
		req.SetBasicAuth(c.acc.Username, c.acc.Password)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, data
}

// digestOf is the OCI digest of data.
func digestOf(data []byte) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(data))
}

// pushBlob uploads a blob as c (POST, then PUT with the digest) and returns
// the status of the step that answered last.
func pushBlob(t *testing.T, c client, addr, repo string, data []byte) int {
	t.Helper()
	res, _ := send(t, c, http.MethodPost, "http://"+addr+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	if res.StatusCode != http.StatusAccepted {
		return res.StatusCode
	}
	loc, err := res.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", digestOf(data))
	loc.RawQuery = q.Encode()
	res, _ = send(t, c, http.MethodPut, loc.String(), data, map[string]string{"Content-Type": "application/octet-stream"})
	return res.StatusCode
}

// testImage is a one-layer OCI image: its blobs and its manifest.
type testImage struct {
	config, layer, manifest []byte
}

func newTestImage(note string) testImage {
	img := testImage{config: []byte(`{"architecture":"amd64","os":"linux"}`), layer: []byte("not really a tar: " + note)}
	img.manifest, _ = json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifest,
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(img.config), "size": len(img.config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digestOf(img.layer), "size": len(img.layer)}},
		"annotations":   map[string]string{"test.note": note},
	})
	return img
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

// push uploads the image's blobs and its manifest under tag as c and
// returns the status of the last step tried.
func (img testImage) push(t *testing.T, c client, addr, repo, tag string) int {
	t.Helper()
	for _, blob := range [][]byte{img.config, img.layer} {
		if code := pushBlob(t, c, addr, repo, blob); code != http.StatusCreated {
			return code
		}
	}
	res, _ := send(t, c, http.MethodPut, "http://"+addr+"/v2/"+repo+"/manifests/"+tag, img.manifest, map[string]string{"Content-Type": ociManifest})
	return res.StatusCode
}

func TestRegistryAccountsRefuseAnonymousAndPullOnlyWrites(t *testing.T) {
	reg := newGuardedRegistry(t)
	base := "http://" + reg.Addr() + "/v2/"
	img := newTestImage("the real one")
	if code := img.push(t, pusher, reg.Addr(), "imagehub/app", "v1"); code != http.StatusCreated {
		t.Fatalf("the push account could not push: %d", code)
	}
	manifestURL := base + "imagehub/app/manifests/" + digestOf(img.manifest)
	accept := map[string]string{"Accept": ociManifest}

	tests := []struct {
		who          client
		method, url  string
		body         []byte
		want         int
		challengeFor bool // a 401 must carry the Basic challenge
	}{
		{anonymous, http.MethodGet, base, nil, http.StatusUnauthorized, true},
		{anonymous, http.MethodGet, manifestURL, nil, http.StatusUnauthorized, true},
		{anonymous, http.MethodPost, base + "imagehub/app/blobs/uploads/", nil, http.StatusUnauthorized, true},
		{anonymous, http.MethodPut, base + "imagehub/app/manifests/v1", newTestImage("evil").manifest, http.StatusUnauthorized, true},
		{anonymous, http.MethodDelete, manifestURL, nil, http.StatusUnauthorized, true},
		{guesser, http.MethodGet, base, nil, http.StatusUnauthorized, true},
		{guesser, http.MethodPost, base + "imagehub/app/blobs/uploads/", nil, http.StatusUnauthorized, true},
		{swapped, http.MethodPost, base + "imagehub/app/blobs/uploads/", nil, http.StatusUnauthorized, true},
		{puller, http.MethodGet, base, nil, http.StatusOK, false},
		{puller, http.MethodGet, manifestURL, nil, http.StatusOK, false},
		{puller, http.MethodHead, base + "imagehub/app/blobs/" + digestOf(img.layer), nil, http.StatusOK, false},
		{puller, http.MethodPost, base + "imagehub/app/blobs/uploads/", nil, http.StatusForbidden, false},
		{puller, http.MethodPatch, base + "imagehub/app/blobs/uploads/x", []byte("chunk"), http.StatusForbidden, false},
		{puller, http.MethodPut, base + "imagehub/app/manifests/v1", newTestImage("evil").manifest, http.StatusForbidden, false},
		{puller, http.MethodDelete, manifestURL, nil, http.StatusMethodNotAllowed, false},
		{pusher, http.MethodDelete, manifestURL, nil, http.StatusMethodNotAllowed, false},
		{pusher, http.MethodDelete, base + "imagehub/app/blobs/" + digestOf(img.layer), nil, http.StatusMethodNotAllowed, false},
		{pusher, http.MethodOptions, base, nil, http.StatusMethodNotAllowed, false},
		{pusher, http.MethodGet, manifestURL, nil, http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.who.name+" "+tt.method+" "+strings.TrimPrefix(tt.url, base), func(t *testing.T) {
			res, body := send(t, tt.who, tt.method, tt.url, tt.body, accept)
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.want, body)
			}
			if got, want := res.Header.Get("WWW-Authenticate"), `Basic realm="imagehub"`; tt.challengeFor && got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
			if res.StatusCode >= 400 && !strings.Contains(string(body), `"errors"`) {
				t.Errorf("error body %q is not the distribution API's error document", body)
			}
		})
	}

	// Whatever was refused above left the registry as it was.
	res, body := send(t, puller, http.MethodGet, base+"imagehub/app/manifests/v1", nil, accept)
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, img.manifest) {
		t.Errorf("after the refused requests, v1 is %d %s; want the pushed manifest", res.StatusCode, body)
	}
	if code := newTestImage("evil").push(t, puller, reg.Addr(), "imagehub/app", "v1"); code != http.StatusForbidden {
		t.Errorf("a whole push with the pull account ended with %d, want 403", code)
	}
	if code := newTestImage("evil").push(t, anonymous, reg.Addr(), "imagehub/app", "v1"); code != http.StatusUnauthorized {
		t.Errorf("an anonymous push ended with %d, want 401", code)
	}
}

func TestRegistryPushAccountOverwritesTagsButTheDigestStays(t *testing.T) {
	reg := newGuardedRegistry(t)
	first, second := newTestImage("first"), newTestImage("second")
	for _, img := range []testImage{first, second} {
		if code := img.push(t, pusher, reg.Addr(), "imagehub/app", "v1"); code != http.StatusCreated {
			t.Fatalf("push: %d", code)
		}
	}
	accept := map[string]string{"Accept": ociManifest}
	res, _ := send(t, puller, http.MethodHead, "http://"+reg.Addr()+"/v2/imagehub/app/manifests/v1", nil, accept)
	if got := res.Header.Get("Docker-Content-Digest"); got != digestOf(second.manifest) {
		t.Errorf("the tag names %s, want the second push %s", got, digestOf(second.manifest))
	}
	// A reference pinned to the first digest still gives the first image.
	res, body := send(t, puller, http.MethodGet, "http://"+reg.Addr()+"/v2/imagehub/app/manifests/"+digestOf(first.manifest), nil, accept)
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, first.manifest) {
		t.Errorf("GET by the first digest: %d %s", res.StatusCode, body)
	}
}

func TestRegistryDeletesAreOffWithoutAccountsToo(t *testing.T) {
	reg := newTestRegistry(t, "")
	img := newTestImage("open")
	if code := img.push(t, anonymous, reg.Addr(), "open/app", "v1"); code != http.StatusCreated {
		t.Fatalf("push: %d", code)
	}
	res, body := send(t, anonymous, http.MethodDelete, "http://"+reg.Addr()+"/v2/open/app/manifests/"+digestOf(img.manifest), nil, nil)
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE manifest: %d %s, want 405", res.StatusCode, body)
	}
}

func TestRegistryAccountsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry-accounts.json")
	if _, err := ReadAccounts(path); err == nil {
		t.Fatal("ReadAccounts of a missing file succeeded")
	}
	acc, err := LoadOrCreateAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Push.Username != PushUser || acc.Pull.Username != PullUser || acc.Push.Password == acc.Pull.Password || len(acc.Push.Password) < 40 {
		t.Errorf("generated accounts %+v", acc)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("accounts file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	for _, load := range []func(string) (Accounts, error){LoadOrCreateAccounts, ReadAccounts} {
		if again, err := load(path); err != nil || again != acc {
			t.Errorf("loaded again: %+v, %v; want the same accounts", again, err)
		}
	}
	other, err := LoadOrCreateAccounts(filepath.Join(t.TempDir(), "other.json"))
	if err != nil || other.Push.Password == acc.Push.Password {
		t.Errorf("a second data folder got %+v, %v; want passwords of its own", other, err)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	for _, text := range []string{"not json", `{"push":{"username":"a","password":"short"},"pull":{"username":"b","password":"0123456789abcdefg"}}`,
		`{"push":{"username":"a","password":"0123456789abcdefg"},"pull":{"username":"a","password":"0123456789abcdefgh"}}`} {
		os.WriteFile(bad, []byte(text), 0o600)
		if acc, err := LoadOrCreateAccounts(bad); err == nil {
			t.Errorf("accounts %s were accepted as %+v", text, acc)
		}
	}
	if _, err := StartWithAccounts(context.Background(), "127.0.0.1:0", t.TempDir(), Accounts{}); err == nil {
		t.Error("a registry started with empty accounts")
	}
}
