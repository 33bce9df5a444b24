package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"imagehub/buildah/basecheck"
	"imagehub/buildah/buildtest"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/store"
)

// baseWorld is a group env (newGroupEnv) whose base checks ask a real
// registry, guarded as the embedded one is and holding the bases, that
// builds also push to: the checks pull with its pull-only account, as the
// builds do. No queue runs: builds are recorded as a worker would report them.
type baseWorld struct {
	*testEnv
	reg        *registry.Server
	push, pull *remote.Auth
	// base is the base images' reference, on its tag; builtOn the digest
	// the tag named when the images were built.
	base, builtOn string
}

func newBaseWorld(t *testing.T) *baseWorld {
	t.Helper()
	reg, push, pull := buildtest.RegistryWithAccounts(t)
	w := &baseWorld{reg: reg, push: push, pull: pull, base: reg.Addr() + "/library/debian:bookworm"}
	w.testEnv = newGroupEnv(t, func(cfg *Config) {
		cfg.BaseCheck = basecheck.New(basecheck.Config{Store: cfg.Store, Policy: remote.NewPolicy(reg.Addr()),
			Insecure: []string{reg.Addr()}, RegistryPullAuth: pull, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	})
	w.server.registry = reg.Addr() + "/imagehub" // builds push there, so bases there are pulled with its account
	w.builtOn = w.moveBase(t, "first")
	return w
}

// moveBase pushes another image to the base's tag and returns its digest.
func (w *baseWorld) moveBase(t *testing.T, note string) string {
	t.Helper()
	return buildtest.PushImage(t, w.reg.Addr(), w.push, "library/debian", "bookworm", note).Manifest
}

// recipe is the recipe of the world's images.
func (w *baseWorld) recipe() store.Recipe {
	return store.Recipe{BaseImage: w.base, Apt: "jq"}
}

// builtImage makes a custom image of owner and records a build of it that
// succeeded on the base as it is now; it returns the image's name.
func (w *baseWorld) builtImage(t *testing.T, name, owner string) string {
	t.Helper()
	r := w.recipe()
	img := w.mustCreateImage(&store.Image{DisplayName: name, Owner: owner, Global: owner == store.OwnerSystem, Recipe: &r})
	w.recordBuild(t, img.Name, w.builtOn)
	return img.Name
}

// recordBuild runs the next build of an image as its worker would report
// it: on the base digest given, to success.
func (w *baseWorld) recordBuild(t *testing.T, image, baseDigest string) {
	t.Helper()
	ctx := context.Background()
	b, err := w.store.CreateBuild(ctx, image, w.recipe(), w.reg.Addr()+"/imagehub/"+image+":abc")
	if err != nil {
		t.Fatal(err)
	}
	w.runRecorded(t, b.ID, baseDigest)
}

// runRecorded runs a queued build as its worker would report it.
func (w *baseWorld) runRecorded(t *testing.T, id int64, baseDigest string) {
	t.Helper()
	ctx := context.Background()
	for _, err := range []error{w.store.StartBuild(ctx, id), w.store.SetBuildBase(ctx, id, baseDigest),
		w.store.SucceedBuild(ctx, id, "sha256:"+strings.Repeat("d", 63)+baseDigest[len(baseDigest)-1:], nil)} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// baseJSON is what an image's JSON says of its base.
type baseJSON struct {
	Name                string `json:"name"`
	BaseDigest          string `json:"baseDigest"`
	BaseLatestDigest    string `json:"baseLatestDigest"`
	BaseCheckedAt       string `json:"baseCheckedAt"`
	BaseUpdateAvailable *bool  `json:"baseUpdateAvailable"`
}

func (b baseJSON) marked() bool { return b.BaseUpdateAvailable != nil && *b.BaseUpdateAvailable }

// TestBaseMovedMarkAndRebuild: a check of an unmoved base marks nothing; a
// new digest pushed to the base's tag marks the image in the API, the
// table and its page; the page's one button rebuilds the same recipe, and
// that build's success on the new base clears the mark.
func TestBaseMovedMarkAndRebuild(t *testing.T) {
	w := newBaseWorld(t)
	name := w.builtImage(t, "app", store.OwnerSystem)
	api := w.withToken("admin", store.ScopeAdmin)
	check := func() baseJSON {
		t.Helper()
		var got struct {
			baseJSON
			Error string `json:"error"`
		}
		if res := api.json(http.MethodPost, "/api/v1/images/"+name+"/base-check", nil, &got); res.StatusCode != http.StatusOK {
			t.Fatalf("base-check: %d %q", res.StatusCode, got.Error)
		}
		return got.baseJSON
	}
	if got := check(); got.marked() || got.BaseUpdateAvailable == nil || got.BaseDigest != w.builtOn || got.BaseLatestDigest != w.builtOn {
		t.Fatalf("unmoved base: %+v", got)
	}

	moved := w.moveBase(t, "second")
	if got := check(); !got.marked() || got.BaseDigest != w.builtOn || got.BaseLatestDigest != moved || got.BaseCheckedAt == "" {
		t.Fatalf("moved base: %+v; want the mark, built on %s, now %s", got, w.builtOn, moved)
	}
	var got baseJSON
	api.json(http.MethodGet, "/api/v1/images/"+name, nil, &got)
	if !got.marked() || got.BaseDigest != w.builtOn {
		t.Errorf("GET image after the check: %+v", got)
	}

	admin := w.signIn("admin")
	table, _ := admin.getPage("/admin/images")
	if table.Find("#image-"+name+" .base-update-mark").Length() != 1 {
		t.Errorf("the images table has no update mark for %s", name)
	}
	if n := table.Find(".base-update-mark").Length(); n != 1 {
		t.Errorf("%d update marks in the table, want 1", n)
	}
	page, _ := admin.getPage("/admin/images/" + name)
	notice := page.Find("#base-update")
	if !strings.Contains(notice.Text(), moved) {
		t.Errorf("the image page's notice: %q, want the new digest", notice.Text())
	}
	form := notice.Find("form:has(#rebuild-on-new-base)")
	action, _ := form.Attr("action")
	if action != "/admin/images/"+name+"/base-rebuild" || form.Find("input[name=_csrf]").Length() != 1 {
		t.Fatalf("the rebuild form: action %q, %d CSRF fields", action, form.Find("input[name=_csrf]").Length())
	}

	res := admin.postForm(action, url.Values{})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/builds/") {
		t.Fatalf("one-click rebuild: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	active, err := w.store.ActiveBuilds(context.Background(), name)
	if err != nil || active[name] == nil || active[name].Recipe != w.recipe() {
		t.Fatalf("the rebuild queued %+v, %v; want a build of the same recipe", active[name], err)
	}
	w.queue.mu.Lock()
	notified := w.queue.notified
	w.queue.mu.Unlock()
	if notified == 0 {
		t.Error("the queue was not told of the rebuild")
	}
	w.runRecorded(t, active[name].ID, moved)
	api.json(http.MethodGet, "/api/v1/images/"+name, nil, &got)
	if got.marked() || got.BaseDigest != moved {
		t.Errorf("after the rebuild on the new base: %+v, want no mark", got)
	}
	table, _ = admin.getPage("/admin/images")
	page, _ = admin.getPage("/admin/images/" + name)
	if table.Find(".base-update-mark").Length() != 0 || page.Find("#base-update").Length() != 0 {
		t.Error("the mark is still shown after the rebuild")
	}
	if got := check(); got.marked() {
		t.Errorf("a check after the rebuild: %+v", got)
	}
}

// TestBaseCheckRegistryDown: a registry that does not answer is a 502 with
// a reason (the registry's own for an administrator, a sentence without it
// for a group admin), the page says so, and the mark stays as it was.
func TestBaseCheckRegistryDown(t *testing.T) {
	w := newBaseWorld(t)
	sys := w.builtImage(t, "sys-app", store.OwnerSystem)
	own := w.builtImage(t, "g-app", "team-g")
	w.moveBase(t, "second")
	api := w.withToken("admin", store.ScopeAdmin)
	for _, name := range []string{sys, own} {
		if res := api.json(http.MethodPost, "/api/v1/images/"+name+"/base-check", nil, nil); res.StatusCode != http.StatusOK {
			t.Fatalf("base-check of %s: %d", name, res.StatusCode)
		}
	}
	w.reg.Close()

	var e errorBody
	if res := api.json(http.MethodPost, "/api/v1/images/"+sys+"/base-check", nil, &e); res.StatusCode != http.StatusBadGateway ||
		!strings.Contains(e.Error, w.base) || !strings.Contains(e.Error, "connection refused") {
		t.Errorf("administrator, registry down: %d %q; want 502 with the registry's reason", res.StatusCode, e.Error)
	}
	gina := w.signIn("gina")
	e = errorBody{}
	if res := gina.json(http.MethodPost, "/api/v1/images/"+own+"/base-check", nil, &e); res.StatusCode != http.StatusBadGateway ||
		!strings.Contains(e.Error, checkUnreachable) || strings.Contains(e.Error, "connection refused") {
		t.Errorf("group admin, registry down: %d %q; want 502 without the registry's own text", res.StatusCode, e.Error)
	}
	res := gina.postForm("/groups/team-g/images/"+own+"/base-check", url.Values{})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("Check base, registry down: %d", res.StatusCode)
	}
	page, _ := gina.getPage(res.Header.Get("Location"))
	if text := page.Find("#flash .flash").Text(); !strings.Contains(text, "failed") {
		t.Errorf("the page after a failed check says %q", text)
	}
	for _, name := range []string{sys, own} {
		var got baseJSON
		api.json(http.MethodGet, "/api/v1/images/"+name, nil, &got)
		if !got.marked() {
			t.Errorf("%s after failed checks: %+v, want the mark as it was", name, got)
		}
	}
}

// TestBaseCheckAccess: another group's admin may neither check nor rebuild
// a group's image, as for rebuild; its own group admin may.
func TestBaseCheckAccess(t *testing.T) {
	w := newBaseWorld(t)
	own := w.builtImage(t, "g-app", "team-g")
	hank := w.signIn("hank")
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/api/v1/images/" + own + "/base-check", http.StatusForbidden},
		{http.MethodPost, "/groups/team-h/images/" + own + "/base-check", http.StatusNotFound},
		{http.MethodPost, "/groups/team-h/images/" + own + "/base-rebuild", http.StatusNotFound},
		{http.MethodPost, "/groups/team-g/images/" + own + "/base-rebuild", http.StatusForbidden},
		{http.MethodPost, "/admin/images/" + own + "/base-rebuild", http.StatusForbidden},
	} {
		if res := hank.json(c.method, c.path, nil, nil); res.StatusCode != c.want {
			t.Errorf("hank: %s %s = %d, want %d", c.method, c.path, res.StatusCode, c.want)
		}
	}
	if active, _ := w.store.ActiveBuilds(context.Background(), own); len(active) != 0 {
		t.Errorf("hank's requests queued a build: %+v", active)
	}
	var got baseJSON
	gina := w.signIn("gina")
	if res := gina.json(http.MethodPost, "/api/v1/images/"+own+"/base-check", nil, &got); res.StatusCode != http.StatusOK || got.marked() {
		t.Errorf("gina's check of her group's image: %d %+v", res.StatusCode, got)
	}
}
