package store_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"imagehub/store"
)

// open returns a store on a fresh SQLite file.
func open(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "imagehub.db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenTwiceKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := store.Open(path, make([]byte, 32))
	mustNoErr(t, err)
	mustNoErr(t, s.CreateGroup(context.Background(), &store.Group{Name: "team"}))
	s.Close()
	s, err = store.Open(path, make([]byte, 32))
	mustNoErr(t, err)
	defer s.Close()
	if _, err := s.FindGroup(context.Background(), "team"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestCreateImageGeneratesUniqueNames(t *testing.T) {
	s, ctx := open(t), context.Background()
	var names []string
	for i := 0; i < 3; i++ {
		img := &store.Image{DisplayName: "jupyter", Type: store.TypeCPU, URL: "docker.io/library/busybox:latest", Global: true}
		mustNoErr(t, s.CreateImage(ctx, img))
		names = append(names, img.Name)
	}
	if names[0] != "jupyter" {
		t.Errorf("first name = %q, want jupyter", names[0])
	}
	for _, n := range names[1:] {
		if !strings.HasPrefix(n, "jupyter-") || len(n) != len("jupyter-")+5 {
			t.Errorf("name %q, want jupyter-xxxxx", n)
		}
	}
	if names[1] == names[2] {
		t.Errorf("duplicate names %v", names)
	}
}

// TestNameSuffixRule checks that the name preview and CreateImage follow
// one rule: the display name when it is free, else the display name
// (shortened to fit) with "-" and NameSuffixLen characters.
func TestNameSuffixRule(t *testing.T) {
	s, ctx := open(t), context.Background()
	long := strings.Repeat("a", store.MaxNameLen-3) + "-bc"
	for _, dn := range []string{"jupyter", long} {
		name, taken, err := s.PreviewImageName(ctx, dn, "xxxxx")
		mustNoErr(t, err)
		if name != dn || taken {
			t.Errorf("preview of a free %q = %q, %v", dn, name, taken)
		}
		for range 2 {
			mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: dn, Type: store.TypeCPU, URL: "docker.io/library/busybox:latest", Global: true}))
		}
		preview, taken, err := s.PreviewImageName(ctx, dn, "xxxxx")
		mustNoErr(t, err)
		imgs, _, err := s.ListImages(ctx, store.ImageFilter{Query: dn})
		mustNoErr(t, err)
		var created string
		for _, img := range imgs {
			if img.DisplayName == dn && img.Name != dn {
				created = img.Name
			}
		}
		base := strings.TrimSuffix(preview, "xxxxx")
		if !taken || len(preview) > store.MaxNameLen || !strings.HasPrefix(created, base) || len(created) != len(preview) {
			t.Errorf("%q: preview %q (taken %v), created %q: want the same rule", dn, preview, taken, created)
		}
	}
	if _, _, err := s.PreviewImageName(ctx, "Bad Name", "xxxxx"); store.ErrorFields(err)["displayName"] == "" {
		t.Errorf("preview of an invalid display name: %v", err)
	}
}

func TestImageValidation(t *testing.T) {
	s, ctx := open(t), context.Background()
	mustNoErr(t, s.CreateGroup(ctx, &store.Group{Name: "team"}))
	ok := store.Image{DisplayName: "ok", Type: store.TypeCPU, URL: "docker.io/library/busybox:latest"}
	tests := []struct {
		name  string
		edit  func(*store.Image)
		field string
	}{
		{"empty display name", func(i *store.Image) { i.DisplayName = "" }, "displayName"},
		{"uppercase", func(i *store.Image) { i.DisplayName = "Jupyter" }, "displayName"},
		{"space", func(i *store.Image) { i.DisplayName = "my image" }, "displayName"},
		{"too long", func(i *store.Image) { i.DisplayName = strings.Repeat("a", 64) }, "displayName"},
		{"script", func(i *store.Image) { i.DisplayName = "<script>" }, "displayName"},
		{"look-alike", func(i *store.Image) { i.DisplayName = "jupyt\u0435r" }, "displayName"},
		{"leading dash", func(i *store.Image) { i.DisplayName = "-a" }, "displayName"},
		{"quote", func(i *store.Image) { i.DisplayName = `a"b` }, "displayName"},
		{"unknown type", func(i *store.Image) { i.Type = "tpu" }, "type"},
		{"no url", func(i *store.Image) { i.URL = "" }, "url"},
		{"gpu url on cpu", func(i *store.Image) { i.UseGPUURL = true; i.URLForGPU = "x" }, "urlForGpu"},
		{"long description", func(i *store.Image) { i.Description = strings.Repeat("d", 1001) }, "description"},
		{"unknown group", func(i *store.Image) { i.Groups = []string{"nope"} }, "groups"},
		{"unknown secret", func(i *store.Image) { i.PullSecret = "nope" }, "pullSecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := ok
			tt.edit(&img)
			err := s.CreateImage(ctx, &img)
			if got := store.ErrorFields(err)[tt.field]; got == "" {
				t.Fatalf("err = %v, want a reason for %s", err, tt.field)
			}
		})
	}
	_, total, err := s.ListImages(ctx, store.ImageFilter{})
	mustNoErr(t, err)
	if total != 0 {
		t.Errorf("%d images stored after bad input, want 0", total)
	}
}

func TestImageGroupsAndSelection(t *testing.T) {
	s, ctx := open(t), context.Background()
	for _, g := range []string{"a", "b"} {
		mustNoErr(t, s.CreateGroup(ctx, &store.Group{Name: g}))
	}
	mustNoErr(t, s.CreateUser(ctx, &store.User{Username: "ann", Password: "password1"}))
	mustNoErr(t, s.SetMember(ctx, "a", "ann", store.RoleMember))
	add := func(img *store.Image) {
		t.Helper()
		if img.Type == "" {
			img.Type = store.TypeCPU
		}
		mustNoErr(t, s.CreateImage(ctx, img))
	}
	add(&store.Image{DisplayName: "global", URL: "r/global:1", Global: true})
	add(&store.Image{DisplayName: "for-a", URL: "r/a:1", Groups: []string{"a"}})
	add(&store.Image{DisplayName: "for-b", URL: "r/b:1", Groups: []string{"b"}})
	add(&store.Image{DisplayName: "a-own", URL: "r/own:1", Owner: "a"})
	add(&store.Image{DisplayName: "not-ready", Global: true, Recipe: &store.Recipe{BaseImage: "x"}})

	sel, err := s.Selection(ctx, "ann")
	mustNoErr(t, err)
	var got []string
	for _, img := range sel {
		got = append(got, img.Name+":"+img.Owner)
	}
	want := []string{"a-own:a", "for-a:system", "global:system"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("selection = %v, want %v", got, want)
	}
	gsel, err := s.GroupSelection(ctx, "b")
	mustNoErr(t, err)
	if len(gsel) != 2 {
		t.Errorf("group b selection has %d images, want 2 (global, for-b)", len(gsel))
	}
	img, err := s.FindImage(ctx, "global")
	mustNoErr(t, err)
	img.Global, img.Groups = false, []string{"b"}
	mustNoErr(t, s.UpdateImage(ctx, img))
	img, err = s.FindImage(ctx, "global")
	mustNoErr(t, err)
	if img.Global || !reflect.DeepEqual(img.Groups, []string{"b"}) {
		t.Errorf("after setting the groups: global=%v groups=%v", img.Global, img.Groups)
	}
}

func TestListImagesSearchAndPages(t *testing.T) {
	s, ctx := open(t), context.Background()
	for _, n := range []string{"alpha", "beta", "gamma", "delta"} {
		mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: n, Type: store.TypeGPU, URL: "r/" + n, Global: true, Description: "about " + n}))
	}
	imgs, total, err := s.ListImages(ctx, store.ImageFilter{Query: "ta", Limit: 1})
	mustNoErr(t, err)
	if total != 2 || len(imgs) != 1 || imgs[0].Name != "beta" {
		t.Errorf("search ta: total=%d first=%v", total, imgs)
	}
	_, total, _ = s.ListImages(ctx, store.ImageFilter{Query: "%"})
	if total != 0 {
		t.Errorf("%% matched %d images, want 0 (LIKE wildcards are escaped)", total)
	}
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := store.Open(path, make([]byte, 32))
	mustNoErr(t, err)
	ctx := context.Background()
	mustNoErr(t, s.CreateSecret(ctx, &store.Secret{Name: "reg", RegistryHost: "127.0.0.1:5000", Username: "u", Password: "hunter2-very-secret"}))
	host, user, pass, err := s.SecretAuth(ctx, "reg")
	mustNoErr(t, err)
	if host != "127.0.0.1:5000" || user != "u" || pass != "hunter2-very-secret" {
		t.Errorf("SecretAuth = %q %q %q", host, user, pass)
	}
	list, err := s.ListSecrets(ctx)
	mustNoErr(t, err)
	if len(list) != 1 || list[0].Password != "" {
		t.Errorf("ListSecrets = %+v, want one without password", list)
	}
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "x", Type: store.TypeCPU, URL: "r/x", PullSecret: "reg"}))
	if err := s.DeleteSecret(ctx, "reg"); store.ErrorCode(err) != store.ECONFLICT {
		t.Errorf("delete secret in use: %v, want conflict", err)
	}
	s.Close()
	raw := readFile(t, path) + readFile(t, path+"-wal")
	if strings.Contains(raw, "hunter2-very-secret") {
		t.Error("password found in plain text in the database file")
	}
	if _, err := store.Open(path, make([]byte, 31)); err == nil {
		t.Error("a 31-byte key was accepted")
	}
}

// TestPutSecret: PutSecret creates a secret, then replaces its credentials
// in place, so that images using it keep it.
func TestPutSecret(t *testing.T) {
	s, ctx := open(t), context.Background()
	mustNoErr(t, s.PutSecret(ctx, &store.Secret{Name: "imagehub-registry", RegistryHost: "127.0.0.1:5000", Username: "pull", Password: "first-password"}))
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "x", Type: store.TypeCPU, URL: "127.0.0.1:5000/r/x", PullSecret: "imagehub-registry"}))
	mustNoErr(t, s.PutSecret(ctx, &store.Secret{Name: "imagehub-registry", RegistryHost: "127.0.0.1:5001", Username: "pull2", Password: "second-password"}))
	host, user, pass, err := s.SecretAuth(ctx, "imagehub-registry")
	if err != nil || host != "127.0.0.1:5001" || user != "pull2" || pass != "second-password" {
		t.Errorf("SecretAuth = %q %q %q %v, want the second credentials", host, user, pass, err)
	}
	if list, _ := s.ListSecrets(ctx); len(list) != 1 {
		t.Errorf("ListSecrets = %+v, want one secret", list)
	}
	if img, err := s.FindImage(ctx, "x"); err != nil || img.PullSecret != "imagehub-registry" {
		t.Errorf("image after PutSecret: %+v %v", img, err)
	}
	if err := s.PutSecret(ctx, &store.Secret{Name: "imagehub-registry", RegistryHost: "127.0.0.1:5001", Username: "pull2"}); store.ErrorCode(err) != store.EINVALID {
		t.Errorf("PutSecret without a password: %v, want EINVALID", err)
	}
}

func TestUsersPasswordsAndTokens(t *testing.T) {
	s, ctx := open(t), context.Background()
	mustNoErr(t, s.CreateUser(ctx, &store.User{Username: "ann", Password: "password1"}))
	if err := s.CreateUser(ctx, &store.User{Username: "ann", Password: "password1"}); store.ErrorFields(err)["username"] == "" {
		t.Errorf("duplicate user: %v", err)
	}
	if _, err := s.Authenticate(ctx, "ann", "wrong-pass"); store.ErrorCode(err) != store.EUNAUTHORIZED {
		t.Errorf("wrong password: %v", err)
	}
	u, err := s.Authenticate(ctx, "ann", "password1")
	mustNoErr(t, err)
	mustNoErr(t, s.SetPassword(ctx, "ann", "password2"))
	u2, _ := s.FindUser(ctx, "ann")
	if u2.SessionEpoch == u.SessionEpoch {
		t.Error("password change did not move the session epoch")
	}
	value, tok, err := s.CreateToken(ctx, "ann", "ci", store.ScopeRead)
	mustNoErr(t, err)
	got, scope, err := s.AuthenticateToken(ctx, value)
	mustNoErr(t, err)
	if got.Username != "ann" || scope != store.ScopeRead {
		t.Errorf("token is %s/%s", got.Username, scope)
	}
	mustNoErr(t, s.RevokeToken(ctx, tok.ID, ""))
	if _, _, err := s.AuthenticateToken(ctx, value); store.ErrorCode(err) != store.EUNAUTHORIZED {
		t.Errorf("revoked token: %v", err)
	}
	// A password change revokes the user's tokens, and no one else's.
	mustNoErr(t, s.CreateUser(ctx, &store.User{Username: "bob", Password: "password1"}))
	annTok, _, err := s.CreateToken(ctx, "ann", "ci", store.ScopeAdmin)
	mustNoErr(t, err)
	bobTok, _, err := s.CreateToken(ctx, "bob", "ci", store.ScopeAdmin)
	mustNoErr(t, err)
	mustNoErr(t, s.SetPassword(ctx, "ann", "password3"))
	if _, _, err := s.AuthenticateToken(ctx, annTok); store.ErrorCode(err) != store.EUNAUTHORIZED {
		t.Errorf("a token after its user's password changed: %v", err)
	}
	if _, _, err := s.AuthenticateToken(ctx, bobTok); err != nil {
		t.Errorf("another user's token after ann's password changed: %v", err)
	}
	if err := s.SetPassword(ctx, "nobody", "password3"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("password of a missing user: %v", err)
	}
}

func TestBuildLifecycle(t *testing.T) {
	s, ctx := open(t), context.Background()
	img := &store.Image{DisplayName: "custom", Type: store.TypeCPU, Global: true, Recipe: &store.Recipe{BaseImage: "r/base:1", Pip: "numpy"}}
	mustNoErr(t, s.CreateImage(ctx, img))
	if img.Ready {
		t.Fatal("a custom image without a build is ready")
	}
	b, err := s.CreateBuild(ctx, "custom", *img.Recipe, "127.0.0.1:5000/imagehub/custom:abc")
	mustNoErr(t, err)
	countBuilds := func(st store.BuildStatus) int {
		t.Helper()
		n, err := s.CountBuilds(ctx, st)
		mustNoErr(t, err)
		return n
	}
	if q, r := countBuilds(store.BuildQueued), countBuilds(store.BuildRunning); q != 1 || r != 0 {
		t.Errorf("before its start: %d queued, %d running; want 1, 0", q, r)
	}
	mustNoErr(t, s.StartBuild(ctx, b.ID))
	if q, r := countBuilds(store.BuildQueued), countBuilds(store.BuildRunning); q != 0 || r != 1 {
		t.Errorf("after its start: %d queued, %d running; want 0, 1", q, r)
	}
	if err := s.StartBuild(ctx, b.ID); store.ErrorCode(err) != store.ECONFLICT {
		t.Errorf("start twice: %v", err)
	}
	mustNoErr(t, s.SetBuildPhase(ctx, b.ID, store.BuildPushing))
	for _, bad := range []string{"", "sha256:1", "sha256:" + strings.Repeat("A", 64), "sha512:" + strings.Repeat("a", 64), digest1 + "\n"} {
		if err := s.FinishBuild(ctx, b.ID, store.BuildSucceeded, bad, ""); store.ErrorCode(err) != store.EINVALID {
			t.Errorf("success with digest %q: %v, want EINVALID", bad, err)
		}
	}
	mustNoErr(t, s.FinishBuild(ctx, b.ID, store.BuildSucceeded, digest1, ""))
	if err := s.FinishBuild(ctx, b.ID, store.BuildFailed, "", "x"); store.ErrorCode(err) != store.ECONFLICT {
		t.Errorf("finish twice: %v", err)
	}
	got, _ := s.FindImage(ctx, "custom")
	if want := b.TargetImage + "@" + digest1; !got.Ready || got.URL != want || got.URLForGPU != want {
		t.Errorf("after success: ready=%v url=%q gpu=%q, want both pinned: %s", got.Ready, got.URL, got.URLForGPU, want)
	}
	fb, _ := s.FindBuild(ctx, b.ID)
	if fb.StartedAt == nil || fb.FinishedAt == nil || fb.Digest != digest1 || fb.Recipe.Pip != "numpy" {
		t.Errorf("finished build = %+v", fb)
	}
	if _, err := s.FindBuild(ctx, 999); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("missing build: %v", err)
	}
}

// digest1 and digest2 are well-formed manifest digests.
var (
	digest1 = "sha256:" + strings.Repeat("1", 64)
	digest2 = "sha256:" + strings.Repeat("2", 64)
)

// TestLastDigest: the digest recorded for a target is that of the newest
// succeeded build of the image that pushed it; failed builds, other targets
// and other images do not count.
func TestLastDigest(t *testing.T) {
	s, ctx := open(t), context.Background()
	r := store.Recipe{BaseImage: "r/base:1", Pip: "numpy"}
	for _, name := range []string{"one", "two"} {
		mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: name, Type: store.TypeCPU, Global: true, Recipe: &r}))
	}
	const target = "127.0.0.1:5000/imagehub/one:abc"
	build := func(image, target string, st store.BuildStatus, digest string) {
		t.Helper()
		b, err := s.CreateBuild(ctx, image, r, target)
		mustNoErr(t, err)
		mustNoErr(t, s.StartBuild(ctx, b.ID))
		if digest != "" {
			mustNoErr(t, s.SetBuildBase(ctx, b.ID, "sha256:"+strings.Repeat("b", 63)+digest[len(digest)-1:]))
		}
		mustNoErr(t, s.FinishBuild(ctx, b.ID, st, digest, ""))
	}
	if _, _, err := s.LastDigest(ctx, "one", target); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("no builds yet: %v, want ENOTFOUND", err)
	}
	build("one", target, store.BuildSucceeded, digest1)
	build("one", target, store.BuildSucceeded, digest2)
	build("one", target, store.BuildFailed, "")
	build("one", target+"-other", store.BuildSucceeded, digest1)
	build("two", target, store.BuildSucceeded, digest1)
	wantBase := "sha256:" + strings.Repeat("b", 63) + digest2[len(digest2)-1:]
	if got, base, err := s.LastDigest(ctx, "one", target); err != nil || got != digest2 || base != wantBase {
		t.Errorf("LastDigest = %q, %q, %v; want %s, %s", got, base, err, digest2, wantBase)
	}
	if _, _, err := s.LastDigest(ctx, "one", "127.0.0.1:5000/imagehub/one:never"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("a target never pushed: %v, want ENOTFOUND", err)
	}
}

// TestOneActiveBuildPerImage starts parallel rebuilds of one image: exactly
// one is queued, the others are refused as conflicts, and once that build
// has finished the next one may be queued.
func TestOneActiveBuildPerImage(t *testing.T) {
	s, ctx := open(t), context.Background()
	r := store.Recipe{BaseImage: "r/base:1", Pip: "numpy"}
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "custom", Type: store.TypeCPU, Global: true, Recipe: &r}))
	const n = 8
	var (
		wg   sync.WaitGroup
		errs = make([]error, n)
		ids  = make([]int64, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := s.CreateBuild(ctx, "custom", r, "127.0.0.1:5000/imagehub/custom:abc")
			if b != nil {
				ids[i] = b.ID
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	var queued int64
	for i, err := range errs {
		switch store.ErrorCode(err) {
		case "":
			if queued != 0 {
				t.Errorf("builds %d and %d are both queued", queued, ids[i])
			}
			queued = ids[i]
		case store.ECONFLICT:
		default:
			t.Errorf("rebuild %d: %v, want a conflict", i, err)
		}
	}
	if queued == 0 {
		t.Fatal("no rebuild was queued")
	}
	active, err := s.ActiveBuilds(ctx)
	mustNoErr(t, err)
	if len(active) != 1 || active["custom"] == nil || active["custom"].ID != queued {
		t.Errorf("active builds = %v, want only #%d", active, queued)
	}
	_, err = s.CreateBuild(ctx, "custom", r, "127.0.0.1:5000/imagehub/custom:abc")
	if store.ErrorCode(err) != store.ECONFLICT || !strings.Contains(store.ErrorMessage(err), "still queued") {
		t.Errorf("rebuild while #%d is queued: %v", queued, err)
	}
	mustNoErr(t, s.FinishBuild(ctx, queued, store.BuildCancelled, "", "cancelled"))
	r.Pip = "numpy\npandas"
	b, err := s.CreateBuild(ctx, "custom", r, "127.0.0.1:5000/imagehub/custom:def")
	mustNoErr(t, err)
	if img, _ := s.FindImage(ctx, "custom"); img.Recipe == nil || *img.Recipe != r {
		t.Errorf("the image's recipe after build #%d: %+v, want %+v", b.ID, img.Recipe, r)
	}
	if active, _ := s.ActiveBuilds(ctx, "custom", "other"); len(active) != 1 || active["custom"].ID != b.ID {
		t.Errorf("active builds after the next rebuild = %v", active)
	}
}
