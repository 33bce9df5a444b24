package handlers

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imagehub/buildah/remote"
	"imagehub/store"
)

// The installation BenchmarkScale serves: a year of use.
const (
	scaleImages = 10000
	scaleGroups = 200
	// scaleUserGroups is how many groups the benchmark's user belongs to
	// (team-1 … team-5).
	scaleUserGroups = 5
	scaleAdmin      = "bench-admin"
	scaleUser       = "bench-user"
	scalePassword   = "correct-horse-battery"
)

// scaleStacks are the software stacks the seeded images are named after.
var scaleStacks = []string{"pytorch", "tensorflow", "jupyter-scipy", "r-studio", "cuda-dev", "julia", "spark", "vscode-python"}

// seedScale fills a new store with scaleGroups groups (team-1 … team-200)
// and scaleImages images, written with SQL in one transaction so that it
// takes a second, not the minutes the store's one-transaction-per-image
// methods would. The users, the pull secret and the groups' members go
// through the store (bcrypt, encryption).
//
// Every 10th image is a System image: every 100th is global, the others
// are granted to two groups. The other 9 in 10 are the own images of the
// groups, in turn (45 a group). Every 3rd image is a custom image with a
// recipe and one to five builds; every 7th custom image's last build
// failed, so it is not ready; a few have a build waiting. Descriptions
// name the image's number ("number 1234") and its group ("team 7").
func seedScale(tb testing.TB, st *store.Store, dbPath string) {
	tb.Helper()
	ctx := context.Background()
	for _, u := range []*store.User{
		{Username: scaleAdmin, Password: scalePassword, Admin: true},
		{Username: scaleUser, Password: scalePassword},
	} {
		if err := st.CreateUser(ctx, u); err != nil {
			tb.Fatal(err)
		}
	}
	if err := st.CreateSecret(ctx, &store.Secret{Name: "team-registry", RegistryHost: "registry.example.com",
		Username: "robot", Password: "s3cret-pass"}); err != nil {
		tb.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?_foreign_keys=on&_busy_timeout=10000&_txlock=immediate")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	if err := seedScaleRows(ctx, tx); err != nil {
		tb.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	for g := 1; g <= scaleUserGroups; g++ {
		role := store.RoleMember
		if g == 1 {
			role = store.RoleAdmin
		}
		if err := st.SetMember(ctx, fmt.Sprintf("team-%d", g), scaleUser, role); err != nil {
			tb.Fatal(err)
		}
	}
}

// scaleImage is one image of seedScale.
type scaleImage struct {
	id                     int
	name, description, url string
	typ                    store.ImageType
	// owner is the owning group's number, 0 for a System image.
	owner  int
	global bool
	// grants are the numbers of the groups the image is granted to.
	grants []int
	// recipe is set on a custom image.
	recipe     string
	pullSecret bool
}

// scaleImageOf returns image number i (1 … scaleImages) of seedScale.
func scaleImageOf(i int) scaleImage {
	stack := scaleStacks[i%len(scaleStacks)]
	img := scaleImage{
		id:         i,
		name:       fmt.Sprintf("%s-%d", stack, i),
		url:        fmt.Sprintf("registry.example.com/%s:%d", stack, i),
		typ:        []store.ImageType{store.TypeCPU, store.TypeGPU, store.TypeUniversal}[i%3],
		global:     i%100 == 0,
		pullSecret: i%13 == 0,
	}
	about := "everyone"
	switch {
	case i%10 != 0:
		// The own images of the groups, in turn: this is the k-th.
		k := (i - 1) - (i-1)/10
		img.owner = k%scaleGroups + 1
		img.grants = []int{img.owner}
		about = fmt.Sprintf("team %d", img.owner)
	case !img.global:
		img.grants = []int{(i/10)%scaleGroups + 1, (i/10+scaleGroups/2)%scaleGroups + 1}
		about = "every team it is granted to"
	}
	img.description = fmt.Sprintf("%s image number %d for %s: Python 3.11 with numpy, pandas, scipy and matplotlib, "+
		"JupyterLab 4, git and the usual command-line tools; CUDA 12 when a GPU is present.", stack, i, about)
	if i%3 == 0 {
		img.recipe = fmt.Sprintf(`{"baseImage":"docker.io/library/python:3.11-slim","apt":"git\ncurl","pip":"numpy\npandas==2.2.%d"}`, i%10)
		img.url = fmt.Sprintf("registry.test/imagehub/%s@sha256:%064x", img.name, i)
		if i%21 == 0 {
			img.url = ""
		}
	}
	return img
}

// seedScaleRows inserts the groups, images, grants and builds.
func seedScaleRows(ctx context.Context, tx *sql.Tx) error {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) string {
		return created.Add(time.Duration(i) * time.Hour).Format("2006-01-02T15:04:05.000000Z")
	}
	for g := 1; g <= scaleGroups; g++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO groups (id, name, display_name, created_at) VALUES (?, ?, ?, ?)`,
			g, fmt.Sprintf("team-%d", g), fmt.Sprintf("Team %d", g), at(0)); err != nil {
			return err
		}
	}
	var secretID int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM secrets`).Scan(&secretID); err != nil {
		return err
	}
	insImage, err := tx.PrepareContext(ctx, `INSERT INTO images
		(id, name, display_name, description, type, url, url_for_gpu, use_gpu_url, secret_id, global, owner_group, recipe, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	insGrant, err := tx.PrepareContext(ctx, `INSERT INTO image_groups (image_id, group_id) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	insBuild, err := tx.PrepareContext(ctx, `INSERT INTO builds
		(image_id, status, recipe, target_image, digest, error, created_at, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for i := 1; i <= scaleImages; i++ {
		img := scaleImageOf(i)
		var (
			owner          sql.NullInt64
			recipe         sql.NullString
			secret         sql.NullInt64
			gpuURL, useGPU = img.url, img.typ == store.TypeUniversal && i%2 == 0 && img.url != ""
		)
		if img.owner != 0 {
			owner = sql.NullInt64{Int64: int64(img.owner), Valid: true}
		}
		if img.recipe != "" {
			recipe = sql.NullString{String: img.recipe, Valid: true}
		}
		if img.pullSecret {
			secret = sql.NullInt64{Int64: secretID, Valid: true}
		}
		if useGPU {
			gpuURL = img.url + "-gpu"
		}
		if _, err := insImage.ExecContext(ctx, i, img.name, img.name, img.description, img.typ, img.url, gpuURL, useGPU, secret,
			img.global, owner, recipe, at(i), at(i+1)); err != nil {
			return err
		}
		for _, g := range img.grants {
			if _, err := insGrant.ExecContext(ctx, i, g); err != nil {
				return err
			}
		}
		if img.recipe != "" {
			if err := seedScaleBuilds(ctx, insBuild, img, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// seedScaleBuilds inserts one to five finished builds of a custom image,
// the last one failed when the image is not ready, and a waiting build for
// every 1,500th image.
func seedScaleBuilds(ctx context.Context, ins *sql.Stmt, img scaleImage, at func(int) string) error {
	i, n := img.id, img.id%5+1
	for k := 1; k <= n; k++ {
		status, digest, reason := store.BuildSucceeded, fmt.Sprintf("sha256:%064x", i), ""
		if k == n && img.url == "" {
			status, digest, reason = store.BuildFailed, "", "pip install failed: exit status 1"
		}
		target := fmt.Sprintf("registry.test/imagehub/%s:r%012d", img.name, k)
		if _, err := ins.ExecContext(ctx, i, status, img.recipe, target, digest, reason, at(i+k), at(i+k), at(i+k)); err != nil {
			return err
		}
	}
	if i%1500 == 3 {
		_, err := ins.ExecContext(ctx, i, store.BuildQueued, img.recipe, "registry.test/imagehub/"+img.name+":next", "", "", at(i+n+1), nil, nil)
		return err
	}
	return nil
}

// scaleRoute is a request of the scale benchmark and tests.
type scaleRoute struct {
	name, path string
	// as is who asks: a signed-in administrator (session cookie), the
	// administrator's API token or the user's (a member of 5 groups).
	as scaleCaller
	// htmx marks the live search's fragment request (the HX-Request header).
	htmx bool
}

type scaleCaller int

const (
	adminSession scaleCaller = iota
	adminToken
	userToken
)

// scaleEnv is the seeded server and its callers.
type scaleEnv struct {
	url    string
	client *http.Client
	// cookies holds the administrator's session.
	cookies http.CookieJar
	// tokens are the API tokens of the administrator and of the user.
	tokens map[scaleCaller]string
}

// newScaleEnv seeds a store (seedScale) and serves it over HTTP on
// 127.0.0.1 with the real handlers, with the administrator signed in.
func newScaleEnv(tb testing.TB) *scaleEnv {
	tb.Helper()
	start := time.Now()
	dir := tb.TempDir()
	dbPath := filepath.Join(dir, "imagehub.db")
	st, err := store.Open(dbPath, make([]byte, 32))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	seedScale(tb, st, dbPath)
	tb.Logf("seeded %d images and %d groups in %v", scaleImages, scaleGroups, time.Since(start).Round(time.Millisecond))
	srv, err := New(Config{
		Store:     st,
		HashKey:   []byte(strings.Repeat("h", 32)),
		BlockKey:  []byte(strings.Repeat("b", 32)),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Normalize: testNormalize,
		Inspect: func(context.Context, string, *remote.Auth, bool) (remote.ImageInfo, error) {
			return remote.ImageInfo{}, nil
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	tb.Cleanup(hs.Close)
	jar, _ := cookiejar.New(nil)
	env := &scaleEnv{
		url: hs.URL,
		client: &http.Client{
			Transport:     &http.Transport{MaxIdleConnsPerHost: scaleConcurrency, DisableCompression: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cookies: jar,
		tokens:  map[scaleCaller]string{},
	}
	env.signIn(tb, scaleAdmin)
	for caller, user := range map[scaleCaller]string{adminToken: scaleAdmin, userToken: scaleUser} {
		tok, _, err := st.CreateToken(context.Background(), user, "bench", store.ScopeRead)
		if err != nil {
			tb.Fatal(err)
		}
		env.tokens[caller] = tok
	}
	return env
}

var csrfFieldRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signIn signs the administrator in through the sign-in form, as a browser.
func (env *scaleEnv) signIn(tb testing.TB, username string) {
	tb.Helper()
	c := &http.Client{Jar: env.cookies, CheckRedirect: env.client.CheckRedirect}
	res, err := c.Get(env.url + "/login")
	if err != nil {
		tb.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfFieldRE.FindSubmatch(page)
	if m == nil {
		tb.Fatal("no CSRF token on the sign-in form")
	}
	res, err = c.PostForm(env.url+"/login", url.Values{"username": {username}, "password": {scalePassword}, "_csrf": {string(m[1])}})
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		tb.Fatalf("sign-in: status %d, want 303", res.StatusCode)
	}
}

// request returns a function that makes the request of route r.
func (env *scaleEnv) request(r scaleRoute) func() (*http.Request, error) {
	return func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, env.url+r.path, nil)
		if err != nil {
			return nil, err
		}
		switch {
		case r.path == "/healthz":
		case r.as == adminSession:
			for _, c := range env.cookies.Cookies(req.URL) {
				req.AddCookie(c)
			}
		default:
			req.Header.Set("Authorization", "Bearer "+env.tokens[r.as])
		}
		if r.htmx {
			req.Header.Set("HX-Request", "true")
		}
		return req, nil
	}
}
