package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/store"
)

// TestGroupBuildLimitRefusesAndWritesNothing plays a group admin who queues
// more builds than the group may have waiting or running: through the API
// (a new custom image, a rebuild with a new recipe) and the form, the extra
// build is refused with 409 and the reason, and nothing is written.
// Administrators' System images are not held back.
func TestGroupBuildLimitRefusesAndWritesNothing(t *testing.T) {
	env := newGroupEnv(t)
	env.store.SetGroupBuildLimit(2)
	gina := env.withToken("gina", store.ScopeAdmin)
	build := func(name string) map[string]any {
		return map[string]any{"displayName": name, "type": "cpu", "build": map[string]string{"baseImage": "debian:bookworm", "pip": "numpy"}}
	}
	for _, name := range []string{"g-one", "g-two"} {
		if res := gina.json(http.MethodPost, "/api/v1/groups/team-g/images", build(name), nil); res.StatusCode != http.StatusCreated {
			t.Fatalf("build %s: %d", name, res.StatusCode)
		}
	}
	// g-one's build fails, which frees a place for g-three.
	ctx := context.Background()
	active, _ := env.store.ActiveBuilds(ctx, "g-one", "g-two")
	if err := env.store.FinishBuild(ctx, active["g-one"].ID, store.BuildFailed, "", "x"); err != nil {
		t.Fatal(err)
	}
	if res := gina.json(http.MethodPost, "/api/v1/groups/team-g/images", build("g-three"), nil); res.StatusCode != http.StatusCreated {
		t.Fatalf("build g-three: %d", res.StatusCode)
	}
	images, before := env.imageCount(), env.buildCount()
	const reason = "Group team-g has 2 builds waiting or running; the limit is 2. Wait for one to finish, or cancel one first."

	var e errorBody
	if res := gina.json(http.MethodPost, "/api/v1/groups/team-g/images", build("g-four"), &e); res.StatusCode != http.StatusConflict || e.Error != reason {
		t.Errorf("a new custom image past the limit: %d %q, want 409 %q", res.StatusCode, e.Error, reason)
	}
	if res := gina.json(http.MethodPost, "/api/v1/images/g-one/rebuild", map[string]string{"baseImage": "debian:bookworm", "pip": "evil"}, &e); res.StatusCode != http.StatusConflict || e.Error != reason {
		t.Errorf("a rebuild past the limit: %d %q, want 409 %q", res.StatusCode, e.Error, reason)
	}
	if img, _ := env.store.FindImage(ctx, "g-one"); img.Recipe.Pip != "numpy" {
		t.Errorf("a refused rebuild changed the recipe to %+v", img.Recipe)
	}

	web := env.signIn("gina")
	web.getPage("/groups/team-g/images/new")
	res := web.postForm("/groups/team-g/images", url.Values{
		"kind": {"build"}, "displayName": {"g-five"}, "type": {"cpu"}, "baseImage": {"debian:bookworm"}, "pip": {"pandas"},
	})
	if res.StatusCode != http.StatusConflict {
		t.Errorf("the form past the limit: %d, want 409", res.StatusCode)
	}
	doc := web.readPage(res)
	if got := doc.Find(".form-errors").Text(); !strings.Contains(got, reason) {
		t.Errorf("the form says %q, want %q", got, reason)
	}
	if got := doc.Find("#pip").Text(); got != "pandas" {
		t.Errorf("the form kept pip as %q", got)
	}
	if n, b := env.imageCount(), env.buildCount(); n != images || b != before {
		t.Errorf("after the refusals: %d images and %d builds, want %d and %d", n, b, images, before)
	}

	// An administrator's System images are not limited.
	admin := env.withToken("admin", store.ScopeAdmin)
	for _, name := range []string{"s-one", "s-two", "s-three"} {
		b := build(name)
		b["global"] = true
		if res := admin.json(http.MethodPost, "/api/v1/images", b, &e); res.StatusCode != http.StatusCreated {
			t.Errorf("System image %s: %d %q", name, res.StatusCode, e.Error)
		}
	}
}

// buildCount is how many builds the store holds, of every image.
func (env *testEnv) buildCount() int {
	env.t.Helper()
	bs, err := env.store.ListBuildsByStatus(context.Background(), store.BuildQueued, store.BuildRunning, store.BuildPushing,
		store.BuildSucceeded, store.BuildFailed, store.BuildCancelled, store.BuildInterrupted)
	if err != nil {
		env.t.Fatal(err)
	}
	return len(bs)
}

// TestLogViewersAreBounded opens 30 live streams of one build's log at once,
// ten by each of three users: 20 stream, the other ten are refused with 429
// and the reason. A user's eleventh stream, to another build, is refused
// too; a stream that ends frees its place.
func TestLogViewersAreBounded(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	r := store.Recipe{BaseImage: "docker.io/library/debian:bookworm", Pip: "numpy"}
	var builds []int64
	for _, name := range []string{"watched", "other"} {
		env.mustCreateImage(&store.Image{DisplayName: name, Global: true, Recipe: &r})
		b, err := env.store.CreateBuild(ctx, name, r, "registry.test/imagehub/"+name+":1")
		if err != nil {
			t.Fatal(err)
		}
		builds = append(builds, b.ID)
	}
	var viewers []*logViewer
	for _, name := range []string{"u0", "u1", "u2"} {
		if err := env.store.CreateUser(ctx, &store.User{Username: name, Password: testAdminPassword, Admin: true}); err != nil {
			t.Fatal(err)
		}
		viewers = append(viewers, &logViewer{env: env, token: env.withToken(name, store.ScopeRead).bearer})
	}
	refusedBuild := fmt.Sprintf("Build %d's log has 20 viewers already, the most one build may have; try again later.", builds[0])
	var wg sync.WaitGroup
	for _, v := range viewers {
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if status, msg := v.open(builds[0]); status != http.StatusOK && (status != http.StatusTooManyRequests || msg != refusedBuild) {
					t.Errorf("refused with %d %q", status, msg)
				}
			}()
		}
	}
	wg.Wait()
	streams := 0
	holder := viewers[0] // the user with the most streams open
	for _, v := range viewers {
		streams += len(v.streams)
		if len(v.streams) > len(holder.streams) {
			holder = v
		}
	}
	if streams != 20 {
		t.Fatalf("%d streams started, want 20 (and 10 refused)", streams)
	}
	if n := env.server.LogViewers(); n != 20 {
		t.Errorf("LogViewers() = %d with 20 streams open, want 20", n)
	}
	// Whoever holds 10 streams may not open an eleventh, to any build.
	more := 10 - len(holder.streams) // the holder's streams of the other build
	for len(holder.streams) < 10 {
		if status, msg := holder.open(builds[1]); status != http.StatusOK {
			t.Fatalf("stream %d of one user: %d %q", len(holder.streams)+1, status, msg)
		}
	}
	if status, msg := holder.open(builds[1]); status != http.StatusTooManyRequests ||
		msg != "You are following 10 build logs already, the most one user may; close one first." {
		t.Errorf("an eleventh stream of one user: %d %q", status, msg)
	}
	// A stream that ends frees its place.
	holder.streams[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, msg := holder.open(builds[1])
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a stream ended: %d %q", status, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// One stream ended and another took its place.
	if n := env.server.LogViewers(); n != 20+more {
		t.Errorf("LogViewers() = %d, want %d", n, 20+more)
	}
}

// logViewer opens live streams of build logs with an API token and keeps
// them open until the test ends.
type logViewer struct {
	env   *testEnv
	token string

	mu      sync.Mutex
	streams []io.Closer
}

// open opens a stream of a build's log and returns its status, and the
// error message when it was refused.
func (v *logViewer) open(build int64) (int, string) {
	req, err := http.NewRequest(http.MethodGet, v.env.http.URL+"/api/v1/builds/"+strconv.FormatInt(build, 10)+"/log", nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+v.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	v.env.t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		var e errorBody
		json.NewDecoder(res.Body).Decode(&e)
		return res.StatusCode, e.Error
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.streams = append(v.streams, res.Body)
	return res.StatusCode, ""
}

// TestDeleteImageMidBuildIsRefused: deleting an image whose build waits or
// runs is refused with 409 and the reason, from the form, htmx and the API,
// and changes nothing; once the build is cancelled the image goes.
func TestDeleteImageMidBuildIsRefused(t *testing.T) {
	env := newTestEnv(t)
	api := env.withToken("admin", store.ScopeAdmin)
	var img customImageBody
	if res := api.json(http.MethodPost, "/api/v1/images", map[string]any{
		"displayName": "sci", "type": "cpu", "global": true, "build": map[string]string{"baseImage": "debian"},
	}, &img); res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", res.StatusCode)
	}
	if err := env.store.StartBuild(context.Background(), img.LatestBuild.ID); err != nil {
		t.Fatal(err)
	}
	reason := fmt.Sprintf("Build #%d of image sci is still running; cancel the build first, then delete the image.", img.LatestBuild.ID)

	var e errorBody
	if res := api.json(http.MethodDelete, "/api/v1/images/sci", nil, &e); res.StatusCode != http.StatusConflict || e.Error != reason {
		t.Errorf("API: %d %q, want 409 %q", res.StatusCode, e.Error, reason)
	}
	web := env.signIn("admin")
	web.getPage("/admin/images/sci")
	res := web.postForm("/admin/images/sci/delete", url.Values{})
	if body := readAll(t, res.Body); res.StatusCode != http.StatusConflict || !strings.Contains(body, reason) {
		t.Errorf("form: %d, want 409 saying %q", res.StatusCode, reason)
	}
	res = web.htmx(http.MethodDelete, "/admin/images/sci", nil)
	if body := readAll(t, res.Body); res.StatusCode != http.StatusConflict || !strings.Contains(body, reason) {
		t.Errorf("htmx: %d, want 409 saying %q", res.StatusCode, reason)
	}
	if env.imageCount() != 1 {
		t.Fatal("the image was deleted mid-build")
	}
	if b, _ := env.store.FindBuild(context.Background(), img.LatestBuild.ID); b.Status != store.BuildRunning {
		t.Errorf("the build is %s after the refusals", b.Status)
	}

	if res := api.json(http.MethodPost, "/api/v1/builds/"+strconv.FormatInt(img.LatestBuild.ID, 10)+"/cancel", nil, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("cancel: %d", res.StatusCode)
	}
	if res := api.json(http.MethodDelete, "/api/v1/images/sci", nil, nil); res.StatusCode != http.StatusNoContent || env.imageCount() != 0 {
		t.Errorf("after cancelling: %d, %d images", res.StatusCode, env.imageCount())
	}
}

// TestSSEBatchIsBoundedInBytes: lines waiting for a viewer are gathered into
// one write only up to sseBatchBytes, so that a burst of long lines does not
// hold sseBatch × 64 KiB per viewer.
func TestSSEBatchIsBoundedInBytes(t *testing.T) {
	s := newSSEStream(httptest.NewRecorder())
	huge := strings.Repeat("x", 60<<10)
	more := make(chan buildlog.Line, sseBatch)
	for i := range sseBatch {
		more <- buildlog.Line{ID: int64(i + 2), Text: huge}
	}
	if !s.lines(buildlog.Line{ID: 1, Text: huge}, more) {
		t.Fatal("the batch says the subscription ended")
	}
	if most := sseBatchBytes + len(huge) + 64; len(s.buf) > most {
		t.Errorf("one batch holds %d bytes, more than %d", len(s.buf), most)
	}
	if taken := sseBatch - len(more); taken < 1 || taken == sseBatch {
		t.Errorf("the batch took %d of %d waiting lines", taken, sseBatch)
	}
}
