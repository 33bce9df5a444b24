package handlers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"imagehub/store"
)

// pageVisit is one page of the web interface as a person reaches it: signed
// in as As ("" for nobody), at Path, and, when Submit names a form (a CSS
// selector), after filling the fields of Fill (by id) and sending that form,
// so that the page comes back with its errors. Shows is a CSS selector that
// the page's HTML has (the page reached is the one meant); Live, when set,
// one that the browser has once the page's script has filled it in (a
// build's log).
type pageVisit struct {
	Name   string
	As     string
	Path   string
	Fill   map[string]string
	Submit string
	Shows  string
	Live   string
}

// everyPage seeds env with what makes each page non-trivial (groups with
// members, images of every kind and owner, enough for two pages of the
// table, builds that succeeded, failed, are running (before their first
// step, and at a step with an ETA) and were pruned, with logs long enough
// to scroll, secrets, tokens) and answers the visits that reach every page
// of the web interface, and each form with its errors.
func everyPage(t *testing.T, env *testEnv) []pageVisit {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	env.mustCreateGroup("data-science")
	env.mustCreateGroup("ml-platform")
	must(env.store.CreateUser(ctx, &store.User{Username: "gina", Password: testAdminPassword}))
	must(env.store.SetMember(ctx, "data-science", "alice", store.RoleMember))
	must(env.store.SetMember(ctx, "data-science", "gina", store.RoleAdmin))
	env.mustCreateSecret("private-registry")
	for _, u := range []string{"admin", "alice"} {
		_, _, err := env.store.CreateToken(ctx, u, "notebook launcher", store.ScopeRead)
		must(err)
	}
	expires := time.Now().Add(30 * 24 * time.Hour)
	_, _, err := env.store.CreateTokenExpiring(ctx, "admin", "deploy script", store.ScopeAdmin, &expires)
	must(err)

	env.mustCreateImage(&store.Image{DisplayName: "jupyter-base", URL: "docker.io/jupyter/base-notebook:2024-05-27",
		Description: "Minimal Jupyter notebook with Python 3.11.", Global: true})
	env.mustCreateImage(&store.Image{DisplayName: "tensorflow", Type: store.TypeUniversal, URL: "docker.io/tensorflow/tensorflow:2.16.1",
		UseGPUURL: true, URLForGPU: "docker.io/tensorflow/tensorflow:2.16.1-gpu", PullSecret: "private-registry",
		Description: "TensorFlow 2.16, CPU and GPU variants.", Groups: []string{"data-science", "ml-platform"}})
	for i := range 22 {
		env.mustCreateImage(&store.Image{DisplayName: fmt.Sprintf("python-%02d", i), Type: store.TypeGPU,
			URL: "docker.io/library/python:3.12", Global: true})
	}
	recipe := store.Recipe{BaseImage: "docker.io/library/debian:bookworm", Apt: "curl\njq", Pip: "numpy>=1.26\npandas"}
	env.mustCreateImage(&store.Image{DisplayName: "r-studio", Description: "Custom R image with tidyverse.",
		Recipe: &recipe, Groups: []string{"data-science"}})
	env.mustCreateImage(&store.Image{DisplayName: "team-custom", Owner: "data-science", Recipe: &recipe})
	env.mustCreateImage(&store.Image{DisplayName: "spark", Description: "Not built yet, and granted to nobody.", Recipe: &recipe})
	build := func(image string, final store.BuildStatus, reason string) int64 {
		t.Helper()
		b, err := env.store.CreateBuild(ctx, image, recipe, "registry.test/imagehub/"+image+":r1")
		must(err)
		must(env.store.StartBuild(ctx, b.ID))
		w, err := env.server.logs.Writer(b.ID)
		must(err)
		for i := range 120 {
			fmt.Fprintf(w, "STEP %d/4: RUN apt-get install -y curl jq  # line %d of a long log\n", i%4+1, i)
		}
		must(w.Close())
		if final == store.BuildRunning {
			return b.ID
		}
		digest := ""
		if final == store.BuildSucceeded {
			digest = "sha256:" + strings.Repeat("cd", 32)
		}
		must(env.store.FinishBuild(ctx, b.ID, final, digest, reason))
		must(env.server.logs.Close(b.ID, final))
		return b.ID
	}
	pruned := build("r-studio", store.BuildSucceeded, "")
	must(env.store.MarkBuildsPruned(ctx, pruned))
	succeeded := build("r-studio", store.BuildSucceeded, "")
	failed := build("r-studio", store.BuildFailed, "pip: no matching distribution for pandas==9")
	running := build("r-studio", store.BuildRunning, "")
	groupBuild := build("team-custom", store.BuildFailed, "apt: unable to locate package jqq")
	_, atStep := env.progressImage("pytorch", store.OwnerSystem)
	buildPath := func(id int64) string { return "/admin/builds/" + strconv.FormatInt(id, 10) }
	listed, firstListed, secondListed := env.listedImage("listed", store.OwnerSystem)
	// An image whose base moved since its build: the table's mark, the page's notice.
	env.mustCreateImage(&store.Image{DisplayName: "debian-tools", Description: "Its base image moved since it was built.",
		Global: true, Recipe: &recipe})
	moved, err := env.store.CreateBuild(ctx, "debian-tools", recipe, "registry.test/imagehub/debian-tools:r1")
	must(err)
	must(env.store.StartBuild(ctx, moved.ID))
	must(env.store.SetBuildBase(ctx, moved.ID, "sha256:"+strings.Repeat("0a", 32)))
	must(env.store.FinishBuild(ctx, moved.ID, store.BuildSucceeded, "sha256:"+strings.Repeat("ef", 32), ""))
	must(env.store.RecordBaseCheck(ctx, moved.ID, "sha256:"+strings.Repeat("0b", 32)))
	logShown := "#build-log:not(:empty)"

	errorsShown := ".form-errors"
	return []pageVisit{
		{Name: "sign-in", Path: "/login"},
		{Name: "sign-in with an error", Path: "/login", Fill: map[string]string{"username": "admin", "password": "wrong"},
			Submit: `form[action="/login"]`, Shows: "#login-error"},
		{Name: "not found", As: "admin", Path: "/admin/images/no-such-image", Shows: ".error-page"},
		{Name: "images", As: "admin", Path: "/admin/images"},
		{Name: "images, page 2", As: "admin", Path: "/admin/images?page=2"},
		{Name: "images, System", As: "admin", Path: "/admin/images?owner=system&q=python"},
		{Name: "images, no match", As: "admin", Path: "/admin/images?q=nothing-matches"},
		{Name: "add an existing image", As: "admin", Path: "/admin/images/new"},
		{Name: "add an existing image, with errors", As: "admin", Path: "/admin/images/new",
			Fill: map[string]string{"displayName": "Bad Name", "url": "not a url"}, Submit: "#image-form", Shows: errorsShown},
		{Name: "add a custom image", As: "admin", Path: "/admin/images/new?kind=build"},
		{Name: "add a custom image, with errors", As: "admin", Path: "/admin/images/new?kind=build",
			Fill: map[string]string{"displayName": "x", "apt": "bad package name!"}, Submit: "#image-form", Shows: errorsShown},
		{Name: "image", As: "admin", Path: "/admin/images/tensorflow"},
		{Name: "image not ready", As: "admin", Path: "/admin/images/spark"},
		{Name: "custom image", As: "admin", Path: "/admin/images/r-studio"},
		{Name: "image whose base moved", As: "admin", Path: "/admin/images/debian-tools", Shows: "#base-update"},
		{Name: "edit an image", As: "admin", Path: "/admin/images/tensorflow/edit"},
		{Name: "edit an image, with errors", As: "admin", Path: "/admin/images/tensorflow/edit",
			Fill: map[string]string{"url": ""}, Submit: "#image-form", Shows: errorsShown},
		{Name: "edit a custom image", As: "admin", Path: "/admin/images/r-studio/edit"},
		{Name: "edit groups", As: "admin", Path: "/admin/images/tensorflow/groups"},
		{Name: "rebuild", As: "admin", Path: "/admin/images/r-studio/rebuild"},
		{Name: "rebuild, with errors", As: "admin", Path: "/admin/images/r-studio/rebuild",
			Fill: map[string]string{"baseImage": "", "pip": "--index-url http://x"}, Submit: "#rebuild-form", Shows: errorsShown},
		{Name: "build that succeeded", As: "admin", Path: buildPath(succeeded), Shows: "#build-log", Live: logShown},
		{Name: "build that failed", As: "admin", Path: buildPath(failed), Shows: "#build-log", Live: logShown},
		{Name: "build running", As: "admin", Path: buildPath(running), Shows: "#build-log", Live: logShown},
		{Name: "build running, at step 2 of 4 with its ETA", As: "admin", Path: buildPath(atStep), Shows: "#build-progress-bar", Live: logShown},
		{Name: "build pruned", As: "admin", Path: buildPath(pruned), Shows: "#log-pruned"},
		{Name: "build with its packages and changes", As: "admin", Path: buildPath(secondListed), Shows: "#packages"},
		{Name: "build's packages filtered", As: "admin", Path: buildPath(secondListed) + "?q=nothing-matches&manager=pip", Shows: "#packages"},
		{Name: "image with Compare", As: "admin", Path: fmt.Sprintf("/admin/images/%s?from=%d&to=%d", listed, secondListed, firstListed),
			Shows: "#compare"},
		{Name: "secrets", As: "admin", Path: "/admin/secrets"},
		{Name: "secrets, with errors", As: "admin", Path: "/admin/secrets", Submit: "#secret-form", Shows: errorsShown},
		{Name: "settings", As: "admin", Path: "/admin/settings"},
		{Name: "settings, with errors", As: "admin", Path: "/admin/settings",
			Fill: map[string]string{"pipIndexUrl": "ftp://x", "aptMirror": "not a url"}, Submit: "#settings-form", Shows: errorsShown},
		{Name: "groups", As: "admin", Path: "/admin/groups"},
		{Name: "groups, with errors", As: "admin", Path: "/admin/groups", Fill: map[string]string{"name": "Bad Name"},
			Submit: "#group-form", Shows: errorsShown},
		{Name: "group", As: "admin", Path: "/admin/groups/data-science/edit"},
		{Name: "group, with errors", As: "admin", Path: "/admin/groups/data-science/edit", Submit: "#member-form", Shows: errorsShown},
		{Name: "users", As: "admin", Path: "/admin/users"},
		{Name: "users, with errors", As: "admin", Path: "/admin/users", Submit: "#user-form", Shows: errorsShown},
		{Name: "user", As: "admin", Path: "/admin/users/alice"},
		{Name: "own user", As: "admin", Path: "/admin/users/admin"},
		{Name: "user, with errors", As: "admin", Path: "/admin/users/alice", Submit: "#password-form", Shows: "#password-error"},
		{Name: "disk", As: "admin", Path: "/admin/disk"},
		{Name: "tokens (all)", As: "admin", Path: "/account/tokens"},
		{Name: "tokens, with errors", As: "admin", Path: "/account/tokens", Fill: map[string]string{"name": strings.Repeat("n", 101)},
			Submit: "#token-form", Shows: errorsShown},
		{Name: "token created", As: "admin", Path: "/account/tokens", Fill: map[string]string{"name": "ci"},
			Submit: "#token-form", Shows: "#new-token"},
		{Name: "my images (admin)", As: "admin", Path: "/images"},
		{Name: "group's images", As: "gina", Path: "/groups/data-science/images"},
		{Name: "group: add an image", As: "gina", Path: "/groups/data-science/images/new"},
		{Name: "group: add a custom image", As: "gina", Path: "/groups/data-science/images/new?kind=build"},
		{Name: "group: add a custom image, with errors", As: "gina", Path: "/groups/data-science/images/new?kind=build",
			Submit: "#image-form", Shows: errorsShown},
		{Name: "group: custom image", As: "gina", Path: "/groups/data-science/images/team-custom"},
		{Name: "group: edit", As: "gina", Path: "/groups/data-science/images/team-custom/edit"},
		{Name: "group: rebuild", As: "gina", Path: "/groups/data-science/images/team-custom/rebuild"},
		{Name: "group: build", As: "gina", Path: "/groups/data-science/builds/" + strconv.FormatInt(groupBuild, 10), Shows: "#build-log", Live: logShown},
		{Name: "my images", As: "alice", Path: "/images"},
		{Name: "tokens", As: "alice", Path: "/account/tokens"},
		{Name: "forbidden", As: "alice", Path: "/admin/users", Shows: ".error-page"},
	}
}
