package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"imagehub/store"
)

// TestMovedURLDropsKeptSecret: an image (or its recipe) that keeps an
// administrator's pull secret loses it when its URL (or base image) moves to
// another registry host than the secret's, whoever moves it, and the page
// says so; a move within the secret's host keeps it.
func TestMovedURLDropsKeptSecret(t *testing.T) {
	env := newGroupEnv(t)
	env.mustCreateSecret("registry-a") // for registry.example.com
	ctx := context.Background()
	secretOf := func(name string) string {
		t.Helper()
		img, err := env.store.FindImage(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return img.PullSecret
	}
	for _, name := range []string{"g-api", "g-form", "g-same"} {
		env.mustCreateImage(&store.Image{DisplayName: name, URL: "registry.example.com/private/app:1", PullSecret: "registry-a", Owner: "team-g"})
	}
	api := env.withToken("gina", store.ScopeAdmin)

	// The API: the answer and the store show the secret gone.
	var patched store.Image
	res := api.json(http.MethodPatch, "/api/v1/images/g-api", map[string]any{"url": "attacker.example/app:1"}, &patched)
	if res.StatusCode != http.StatusOK || patched.PullSecret != "" || patched.URL != "attacker.example/app:1" || secretOf("g-api") != "" {
		t.Errorf("PATCH to another host: %d %+v; stored secret %q", res.StatusCode, patched, secretOf("g-api"))
	}

	// Within the secret's host it stays.
	res = api.json(http.MethodPatch, "/api/v1/images/g-same", map[string]any{"url": "registry.example.com/private/other:2"}, &patched)
	if res.StatusCode != http.StatusOK || patched.PullSecret != "registry-a" {
		t.Errorf("PATCH within the host: %d %+v", res.StatusCode, patched)
	}

	// The edit form, with the secret's toggle still on as the form sends
	// it: saved without the secret, and the notice says why.
	gina := env.signIn("gina")
	gina.getPage("/groups/team-g/images/g-form/edit")
	res = gina.postForm("/groups/team-g/images/g-form", url.Values{
		"displayName": {"g-form"}, "type": {"cpu"}, "url": {"docker.io/library/python:3"},
		"usePullSecret": {"on"}, "pullSecret": {"registry-a"},
	})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit form: %d %s", res.StatusCode, readAll(t, res.Body))
	}
	doc, _ := gina.getPage(res.Header.Get("Location"))
	flash := strings.Join(strings.Fields(doc.Find(".flash").Text()), " ")
	if !strings.Contains(flash, `Pull secret "registry-a" was removed: it is for registry.example.com, and the image is now on docker.io.`) {
		t.Errorf("notice after the edit: %q", flash)
	}
	if s := secretOf("g-form"); s != "" {
		t.Errorf("the edit form kept secret %q for another host", s)
	}

	// An administrator's move drops it too: the credentials are the same.
	env.mustCreateImage(&store.Image{DisplayName: "sys-a", URL: "registry.example.com/private/app:1", PullSecret: "registry-a", Global: true})
	res = env.withToken("admin", store.ScopeAdmin).json(http.MethodPatch, "/api/v1/images/sys-a", map[string]any{"url": "quay.io/org/app:1", "pullSecret": "registry-a"}, &patched)
	if res.StatusCode != http.StatusOK || patched.PullSecret != "" {
		t.Errorf("admin's PATCH to another host: %d %+v", res.StatusCode, patched)
	}
}

// TestMovedBaseDropsKeptRecipeSecret: the same for a custom image's recipe,
// whose pull secret is the base image's.
func TestMovedBaseDropsKeptRecipeSecret(t *testing.T) {
	env := newGroupEnv(t)
	env.mustCreateSecret("registry-a")
	ctx := context.Background()
	recipeSecretOfLastBuild := func(name string) string {
		t.Helper()
		bs, err := env.store.ListBuilds(ctx, name)
		if err != nil || len(bs) == 0 {
			t.Fatalf("builds of %s: %v %v", name, bs, err)
		}
		return bs[0].Recipe.PullSecret
	}
	for _, name := range []string{"g-api", "g-form", "g-same"} {
		env.mustCreateImage(&store.Image{DisplayName: name, Owner: "team-g",
			Recipe: &store.Recipe{BaseImage: "registry.example.com/private/base:1", PullSecret: "registry-a", Apt: "curl"}})
	}
	api := env.withToken("gina", store.ScopeAdmin)
	res := api.json(http.MethodPost, "/api/v1/images/g-api/rebuild", map[string]string{"baseImage": "attacker.example/base:1", "pullSecret": "registry-a", "apt": "curl"}, nil)
	if res.StatusCode != http.StatusAccepted || recipeSecretOfLastBuild("g-api") != "" {
		t.Errorf("API rebuild on another host: %d, secret %q", res.StatusCode, recipeSecretOfLastBuild("g-api"))
	}
	res = api.json(http.MethodPost, "/api/v1/images/g-same/rebuild", map[string]string{"baseImage": "registry.example.com/private/base:2", "pullSecret": "registry-a", "apt": "curl"}, nil)
	if res.StatusCode != http.StatusAccepted || recipeSecretOfLastBuild("g-same") != "registry-a" {
		t.Errorf("API rebuild within the host: %d, secret %q", res.StatusCode, recipeSecretOfLastBuild("g-same"))
	}

	gina := env.signIn("gina")
	gina.getPage("/groups/team-g/images/g-form/rebuild")
	res = gina.postForm("/groups/team-g/images/g-form/rebuild", url.Values{
		"baseImage": {"debian:bookworm"}, "apt": {"curl"}, "usePullSecret": {"on"}, "pullSecret": {"registry-a"},
	})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("rebuild form: %d %s", res.StatusCode, readAll(t, res.Body))
	}
	doc, _ := gina.getPage(res.Header.Get("Location"))
	flash := strings.Join(strings.Fields(doc.Find(".flash").Text()), " ")
	if !strings.Contains(flash, `Pull secret "registry-a" was removed from the recipe: it is for registry.example.com, and the base image is now on docker.io.`) {
		t.Errorf("notice after the rebuild: %q", flash)
	}
	if s := recipeSecretOfLastBuild("g-form"); s != "" {
		t.Errorf("the rebuild form kept secret %q for another host", s)
	}
}
