package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"go.podman.io/image/v5/docker/reference"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/disk"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/store"
)

// testAdminPassword is the password of the admin every test server has.
const testAdminPassword = "correct-horse-battery"

// testEnv is a server on a real SQLite file, reachable over HTTP.
type testEnv struct {
	t      *testing.T
	store  *store.Store
	server *Server
	http   *httptest.Server
	// inspected records the references Check asked about.
	inspected []string
	queue     *fakeQueue
	// dbPath is the SQLite file and logDir the build-log folder
	// (assertUnchanged reads both).
	dbPath, logDir string
}

// newTestEnv starts a server with an "admin" administrator and a plain user
// "alice". Normalize is the containers/image parser, as in production;
// Inspect answers from a table and fails for hosts ending in ".invalid".
// configure, when given, changes the server's Config before it is built.
func newTestEnv(t *testing.T, configure ...func(*Config)) *testEnv {
	t.Helper()
	dbPath, logDir := filepath.Join(t.TempDir(), "imagehub.db"), t.TempDir()
	st, err := store.Open(dbPath, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, u := range []*store.User{
		{Username: "admin", Password: testAdminPassword, Admin: true},
		{Username: "alice", Password: testAdminPassword},
	} {
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	env := &testEnv{t: t, store: st, queue: &fakeQueue{store: st}, dbPath: dbPath, logDir: logDir}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	logs := buildlog.NewHub(logDir)
	admin, err := registry.OpenAdmin(ctx, filepath.Join(t.TempDir(), "registry"))
	if err != nil {
		t.Fatal(err)
	}
	keeper, err := disk.New(disk.Config{Store: st, Logs: logs, Queue: env.queue, Registry: admin, RegistryPrefix: "registry.test/imagehub",
		DataDir: t.TempDir(), KeepBuilds: disk.DefaultKeepBuilds, GCInterval: disk.DefaultGCInterval, MinFreeDisk: disk.DefaultMinFreeDisk,
		CacheSize: disk.DefaultCacheSize, FreeSpace: func() (int64, error) { return 42 << 30, nil }, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Store:     st,
		HashKey:   []byte(strings.Repeat("h", 32)),
		BlockKey:  []byte(strings.Repeat("b", 32)),
		Logger:    logger,
		Normalize: testNormalize,
		Inspect:   env.fakeInspect,
		// Builds are recorded as queued; fakeQueue stands in for the queue,
		// whose real builds are tested in buildah and cmd/imagehub.
		Builds:         env.queue,
		Logs:           buildlog.NewHub(logDir),
		RegistryPrefix: "registry.test/imagehub",
		Metrics:        http.HandlerFunc(serveTestMetrics),
		Disk:           keeper,
	}
	for _, f := range configure {
		f(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env.server = srv
	env.http = httptest.NewServer(srv.Handler())
	t.Cleanup(env.http.Close)
	return env
}

// serveTestMetrics stands in for the metrics, which handlers/metrics tests.
func serveTestMetrics(w http.ResponseWriter, _ *http.Request) {
	io.WriteString(w, "# test metrics\n")
}

// testNormalize mirrors remote.NormalizeReference: the containers/image
// parser, with ":latest" added when there is no tag.
func testNormalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, " \t\r\n") {
		return "", errors.New("an image reference cannot contain spaces")
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", errors.New("not a valid image reference: " + err.Error())
	}
	return reference.TagNameOnly(named).String(), nil
}

func (env *testEnv) fakeInspect(ctx context.Context, ref string, auth *remote.Auth, insecure bool) (remote.ImageInfo, error) {
	env.inspected = append(env.inspected, ref)
	if strings.Contains(ref, ".invalid") {
		return remote.ImageInfo{}, errors.New("pinging container registry " + remote.Host(ref) + ": dial tcp: lookup: no such host")
	}
	if strings.Contains(ref, "private") && (auth == nil || auth.Password != "s3cret-pass") {
		return remote.ImageInfo{}, errors.New("reading manifest: unauthorized: authentication required")
	}
	return remote.ImageInfo{
		Reference: ref,
		Digest:    "sha256:" + strings.Repeat("ab", 32),
		MediaType: "application/vnd.oci.image.index.v1+json",
		Platforms: []string{"linux/amd64", "linux/arm64"},
		Size:      123456789,
	}, nil
}

// client is a browser-like HTTP client: it keeps cookies and does not follow
// redirects, so that tests see them.
type client struct {
	env  *testEnv
	http *http.Client
	// csrf is the token of the last page read.
	csrf string
	// bearer, when set, is sent as an API token.
	bearer string
}

func (env *testEnv) anonymous() *client {
	jar, _ := cookiejar.New(nil)
	return &client{env: env, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// signIn returns a client signed in as username through the sign-in form.
func (env *testEnv) signIn(username string) *client {
	env.t.Helper()
	c := env.anonymous()
	c.getPage("/login")
	res := c.postForm("/login", url.Values{"username": {username}, "password": {testAdminPassword}})
	if res.StatusCode != http.StatusSeeOther {
		env.t.Fatalf("sign-in as %s: status %d, want 303", username, res.StatusCode)
	}
	c.getPage("/images") // a page of a signed-in user, for the new CSRF token
	return c
}

// withToken returns a client that sends an API token of the given scope.
func (env *testEnv) withToken(username string, scope store.TokenScope) *client {
	env.t.Helper()
	tok, _, err := env.store.CreateToken(context.Background(), username, "test", scope)
	if err != nil {
		env.t.Fatal(err)
	}
	c := env.anonymous()
	c.bearer = tok
	return c
}

func (c *client) do(req *http.Request) *http.Response {
	c.env.t.Helper()
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.env.t.Fatal(err)
	}
	c.env.t.Cleanup(func() { res.Body.Close() })
	return res
}

func (c *client) request(method, path string, body io.Reader, header map[string]string) *http.Response {
	c.env.t.Helper()
	req, err := http.NewRequest(method, c.env.http.URL+path, body)
	if err != nil {
		c.env.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return c.do(req)
}

func (c *client) get(path string) *http.Response { return c.request(http.MethodGet, path, nil, nil) }

// getPage reads an HTML page, remembers its CSRF token and returns the
// document and status.
func (c *client) getPage(path string) (*goquery.Document, int) {
	c.env.t.Helper()
	res := c.get(path)
	return c.readPage(res), res.StatusCode
}

func (c *client) readPage(res *http.Response) *goquery.Document {
	c.env.t.Helper()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		c.env.t.Fatal(err)
	}
	if tok, ok := doc.Find(`input[name=_csrf]`).First().Attr("value"); ok && tok != "" {
		c.csrf = tok
	}
	return doc
}

// postForm posts a form with the client's CSRF token.
func (c *client) postForm(path string, form url.Values) *http.Response {
	c.env.t.Helper()
	if form.Get("_csrf") == "" && c.csrf != "" {
		form.Set("_csrf", c.csrf)
	}
	return c.request(http.MethodPost, path, strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// htmx sends a request as htmx does: HX-Request and the CSRF header.
func (c *client) htmx(method, path string, form url.Values) *http.Response {
	c.env.t.Helper()
	h := map[string]string{"HX-Request": "true", "X-CSRF-Token": c.csrf}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
		h["Content-Type"] = "application/x-www-form-urlencoded"
	}
	return c.request(method, path, body, h)
}

// json sends a JSON body (a string, sent as it is, or a value to encode) with
// the CSRF header, and decodes the answer into out when out is not nil.
func (c *client) json(method, path string, body any, out any) *http.Response {
	c.env.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.env.t.Fatal(err)
		}
		r = strings.NewReader(string(raw))
	}
	h := map[string]string{"Accept": "application/json"}
	if r != nil {
		h["Content-Type"] = "application/json"
	}
	if c.csrf != "" {
		h["X-CSRF-Token"] = c.csrf
	}
	res := c.request(method, path, r, h)
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			c.env.t.Fatalf("%s %s: decoding the answer (status %d): %v", method, path, res.StatusCode, err)
		}
	}
	return res
}

// imageCount is how many images the store holds.
func (env *testEnv) imageCount() int {
	env.t.Helper()
	_, n, err := env.store.ListImages(context.Background(), store.ImageFilter{})
	if err != nil {
		env.t.Fatal(err)
	}
	return n
}

// mustCreateImage stores an image directly.
func (env *testEnv) mustCreateImage(img *store.Image) *store.Image {
	env.t.Helper()
	if img.Type == "" {
		img.Type = store.TypeCPU
	}
	if err := env.store.CreateImage(context.Background(), img); err != nil {
		env.t.Fatal(err)
	}
	return img
}

func (env *testEnv) mustCreateGroup(name string) {
	env.t.Helper()
	if err := env.store.CreateGroup(context.Background(), &store.Group{Name: name}); err != nil {
		env.t.Fatal(err)
	}
}

func (env *testEnv) mustCreateSecret(name string) {
	env.t.Helper()
	err := env.store.CreateSecret(context.Background(), &store.Secret{
		Name: name, RegistryHost: "registry.example.com", Username: "robot", Password: "s3cret-pass",
	})
	if err != nil {
		env.t.Fatal(err)
	}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testImage is a ready, global CPU image.
func testImage(displayName string) *store.Image {
	return &store.Image{DisplayName: displayName, Type: store.TypeCPU, URL: "docker.io/library/busybox:latest", Global: true}
}

// parseHTML parses a page or fragment for goquery assertions.
func parseHTML(t *testing.T, body string) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// rowText is a table row's cells, each trimmed, joined by spaces.
func rowText(row *goquery.Selection) string {
	var cells []string
	row.Find("td").Each(func(_ int, td *goquery.Selection) {
		cells = append(cells, strings.Join(strings.Fields(td.Text()), " "))
	})
	return strings.Join(cells, " ")
}
