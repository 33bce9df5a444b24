package handlers

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// fakeQueue records what the web layer asks of the build queue; a cancel
// marks the build cancelled in the real store, as the queue would. As the
// disk keeper's queue, it runs a chore at once and records what the layer
// cache is asked to forget.
type fakeQueue struct {
	store     *store.Store
	mu        sync.Mutex
	notified  int
	waiting   string
	chores    []string
	forgotten []string
}

func (q *fakeQueue) Waiting() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting
}

func (q *fakeQueue) Do(name string, _ bool, run func(context.Context) error) {
	q.mu.Lock()
	q.chores = append(q.chores, name)
	q.mu.Unlock()
	run(context.Background())
}

func (q *fakeQueue) ForgetImages(repos ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.forgotten = append(q.forgotten, repos...)
}

func (q *fakeQueue) CacheUsage(context.Context) (workerspec.CacheResult, error) {
	return workerspec.CacheResult{Size: 3 << 30, Images: 7}, nil
}

func (q *fakeQueue) Notify() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.notified++
}

func (q *fakeQueue) Cancel(ctx context.Context, id int64) error {
	return q.store.FinishBuild(ctx, id, store.BuildCancelled, "", "cancelled")
}

func (q *fakeQueue) notifications() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.notified
}

type buildBody struct {
	ID          int64  `json:"id"`
	Status      string `json:"status"`
	TargetImage string `json:"targetImage"`
}

type customImageBody struct {
	Name        string     `json:"name"`
	Ready       bool       `json:"ready"`
	URL         string     `json:"url"`
	LatestBuild *buildBody `json:"latestBuild"`
}

func TestAPICustomImageQueuesItsFirstBuild(t *testing.T) {
	env := newTestEnv(t)
	admin := env.withToken("admin", store.ScopeAdmin)
	var img customImageBody
	res := admin.json("POST", "/api/v1/images", map[string]any{
		"displayName": "sci", "type": "cpu", "global": true,
		"build": map[string]string{"baseImage": "debian:bookworm", "apt": "curl\n# tools\nvim", "conda": "-c conda-forge::numpy==1.17*", "pip": "numpy>=1.2"},
	}, &img)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", res.StatusCode)
	}
	if img.Ready || img.URL != "" || img.LatestBuild == nil || img.LatestBuild.Status != "queued" {
		t.Fatalf("created %+v, want not ready with a queued build", img)
	}
	if got := img.LatestBuild.TargetImage; !strings.HasPrefix(got, "registry.test/imagehub/sci:") || len(got) != len("registry.test/imagehub/sci:")+12 {
		t.Errorf("target = %q, want registry.test/imagehub/sci:<12 hex>", got)
	}
	if env.queue.notifications() != 1 {
		t.Errorf("queue notified %d times, want 1", env.queue.notifications())
	}
	stored, _ := env.store.FindImage(context.Background(), "sci")
	if stored.Recipe.BaseImage != "docker.io/library/debian:bookworm" || stored.Recipe.Apt != "curl\n# tools\nvim" {
		t.Errorf("stored recipe %+v: want the base normalised and the lists as typed", stored.Recipe)
	}

	var again buildBody
	if res := admin.json("POST", "/api/v1/images/sci/rebuild", nil, &again); res.StatusCode != http.StatusConflict {
		t.Errorf("rebuild while a build is queued: %d, want 409", res.StatusCode)
	}
	var cancelled buildBody
	if res := admin.json("POST", "/api/v1/builds/"+strconv.FormatInt(img.LatestBuild.ID, 10)+"/cancel", nil, &cancelled); res.StatusCode != http.StatusOK || cancelled.Status != "cancelled" {
		t.Errorf("cancel: %d %+v", res.StatusCode, cancelled)
	}
	if res := admin.json("POST", "/api/v1/builds/"+strconv.FormatInt(img.LatestBuild.ID, 10)+"/cancel", nil, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("cancel twice: %d, want 409", res.StatusCode)
	}
	if res := admin.json("POST", "/api/v1/images/sci/rebuild", map[string]string{"baseImage": "debian:bookworm", "pip": "requests"}, &again); res.StatusCode != http.StatusAccepted || again.TargetImage == img.LatestBuild.TargetImage {
		t.Errorf("rebuild with a new recipe: %d %+v", res.StatusCode, again)
	}
	var list struct {
		Items []buildBody `json:"items"`
		Total int         `json:"total"`
	}
	admin.json("GET", "/api/v1/images/sci/builds", nil, &list)
	if list.Total != 2 || list.Items[0].ID != again.ID {
		t.Errorf("history %+v, want 2 builds newest first", list)
	}
	if res := admin.json("POST", "/api/v1/images/sci/rebuild", map[string]string{"baseImage": "debian:bookworm", "pip": "requests"}, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("second rebuild while one is queued: %d, want 409", res.StatusCode)
	}
}

func TestAPICustomImageBadRecipeStoresNothing(t *testing.T) {
	tests := []struct {
		name   string
		recipe map[string]string
		field  string
		want   string
	}{
		{"no base", map[string]string{"pip": "numpy"}, "baseImage", "required"},
		{"bad base", map[string]string{"baseImage": "Not A Ref"}, "baseImage", ""},
		{"apt injection", map[string]string{"baseImage": "debian", "apt": "curl\ncurl; rm -rf /"}, "apt", "line 2"},
		{"conda quote", map[string]string{"baseImage": "debian", "conda": "numpy'"}, "conda", "line 1"},
		{"pip url", map[string]string{"baseImage": "debian", "pip": "ok\n\nx @ https://evil/x.whl"}, "pip", "line 3"},
		{"pip subshell", map[string]string{"baseImage": "debian", "pip": "$(reboot)"}, "pip", "line 1"},
		{"unknown secret", map[string]string{"baseImage": "debian", "pullSecret": "nope"}, "buildPullSecret", "Unknown secret"},
		{"unknown field", map[string]string{"baseImage": "debian", "apt_packages": "x"}, "build", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			admin := env.withToken("admin", store.ScopeAdmin)
			var body struct {
				Fields map[string]string `json:"fields"`
			}
			res := admin.json("POST", "/api/v1/images", map[string]any{"displayName": "x", "type": "cpu", "build": tt.recipe}, &body)
			if res.StatusCode != http.StatusUnprocessableEntity && res.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 422", res.StatusCode)
			}
			if tt.field != "build" && !strings.Contains(body.Fields[tt.field], tt.want) {
				t.Errorf("fields = %v, want %s to say %q", body.Fields, tt.field, tt.want)
			}
			if n := env.imageCount(); n != 0 {
				t.Errorf("%d images stored after a bad recipe", n)
			}
			if env.queue.notifications() != 0 {
				t.Error("the queue was woken for a refused recipe")
			}
		})
	}
}

func TestBuildFormKeepsValuesAndShowsLineErrors(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	form := url.Values{
		"kind": {"build"}, "displayName": {"sci"}, "type": {"cpu"}, "global": {"on"},
		"baseImage": {"debian:bookworm"}, "apt": {"curl\nBad Pkg"}, "pip": {"numpy>=1.2"},
	}
	res := admin.postForm("/admin/images", form)
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", res.StatusCode)
	}
	doc := admin.readPage(res)
	if got := doc.Find(`[data-field="apt"] .field-error`).Text(); !strings.Contains(got, "line 2") {
		t.Errorf("apt error = %q, want it at line 2", got)
	}
	if got := doc.Find("#apt").Text(); got != "curl\nBad Pkg" {
		t.Errorf("apt kept as %q", got)
	}
	if got, _ := doc.Find("#pip").Html(); !strings.Contains(got, "numpy&gt;=1.2") {
		t.Errorf("pip kept as %q", got)
	}
	if env.imageCount() != 0 {
		t.Error("an image was stored")
	}

	form.Set("apt", "curl\nvim")
	res = admin.postForm("/admin/images", form)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/builds/") {
		t.Fatalf("after fixing: %d to %q, want a redirect to the build page", res.StatusCode, res.Header.Get("Location"))
	}
	page, status := admin.getPage(res.Header.Get("Location"))
	if status != http.StatusOK || page.Find("#cancel-build").Length() != 1 || page.Find("#build-log[data-log-url]").Length() != 1 {
		t.Errorf("build page %d: want Cancel Build and the live log panel", status)
	}
	table, _ := admin.getPage("/admin/images")
	if table.Find(`#image-sci .building-mark`).Length() != 1 || table.Find(`#images-table[data-hx-trigger]`).Length() != 1 {
		t.Error("the table does not mark the building image or does not refresh itself")
	}
	imgPage, _ := admin.getPage("/admin/images/sci")
	if !strings.Contains(imgPage.Find("#building-notice").Text(), "Image building in progress") {
		t.Error("the image page lacks the Image building in progress link")
	}
}

func TestBuildLogText(t *testing.T) {
	env := newTestEnv(t)
	admin := env.withToken("admin", store.ScopeAdmin)
	var img customImageBody
	admin.json("POST", "/api/v1/images", map[string]any{"displayName": "sci", "type": "cpu", "build": map[string]string{"baseImage": "debian"}}, &img)
	w, err := env.server.logs.Writer(img.LatestBuild.ID)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "STEP 1/2: FROM debian\n<script>x</script>\n")
	w.Close()
	res := admin.request("GET", "/api/v1/builds/"+strconv.FormatInt(img.LatestBuild.ID, 10)+"/log", nil, nil)
	if got := readAll(t, res.Body); got != "STEP 1/2: FROM debian\n<script>x</script>\n" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("log = %q (%s)", got, res.Header.Get("Content-Type"))
	}
	if res := admin.request("GET", "/api/v1/builds/999/log", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("log of a missing build: %d", res.StatusCode)
	}
	if res := admin.request("GET", "/api/v1/builds/abc", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("malformed build id: %d", res.StatusCode)
	}
}

// TestBuildFormToggleWithoutSecretCreatesNothing: the form's own reasons are
// checked before anything is created, not after.
func TestBuildFormToggleWithoutSecretCreatesNothing(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	res := admin.postForm("/admin/images", url.Values{
		"kind": {"build"}, "displayName": {"sci"}, "type": {"cpu"}, "baseImage": {"debian"}, "pip": {"numpy"}, "usePullSecret": {"on"},
	})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", res.StatusCode)
	}
	if n := env.imageCount(); n != 0 || env.queue.notifications() != 0 {
		t.Errorf("%d images stored and %d builds queued for a refused form", n, env.queue.notifications())
	}
}
