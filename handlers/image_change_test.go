package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"imagehub/store"
)

// TestEveryImageChangeChecksThePullSecret walks every path that creates,
// changes or builds an image as a group admin who names an administrator's
// pull secret: each one refuses it with the same reason, and nothing is
// saved or queued. A path that forgot checkImageChange would fail here.
func TestEveryImageChangeChecksThePullSecret(t *testing.T) {
	env := newGroupEnv(t)
	env.mustCreateSecret("admins-registry")
	ctx := context.Background()
	env.mustCreateImage(&store.Image{DisplayName: "g-img", URL: "docker.io/library/busybox:latest", Owner: "team-g"})
	env.mustCreateImage(&store.Image{DisplayName: "g-custom", Owner: "team-g", Recipe: &store.Recipe{BaseImage: "docker.io/library/debian:bookworm"}})
	api := env.withToken("gina", store.ScopeAdmin)
	page := env.signIn("gina")
	page.getPage("/groups/team-g/images")
	secret := map[string]string{"baseImage": "debian", "pullSecret": "admins-registry"}
	chosen := url.Values{"usePullSecret": {"on"}, "pullSecret": {"admins-registry"}}
	with := func(v url.Values) url.Values {
		out := url.Values{}
		for k, vs := range chosen {
			out[k] = vs
		}
		for k, vs := range v {
			out[k] = vs
		}
		return out
	}
	cases := []struct {
		name string
		send func() *http.Response
	}{
		{"API create", func() *http.Response {
			return api.json("POST", "/api/v1/groups/team-g/images", map[string]any{"displayName": "a", "type": "cpu", "url": "busybox", "pullSecret": "admins-registry"}, nil)
		}},
		{"API create custom", func() *http.Response {
			return api.json("POST", "/api/v1/groups/team-g/images", map[string]any{"displayName": "b", "type": "cpu", "build": secret}, nil)
		}},
		{"API patch", func() *http.Response {
			return api.json("PATCH", "/api/v1/images/g-img", map[string]any{"pullSecret": "admins-registry"}, nil)
		}},
		{"API patch recipe", func() *http.Response {
			return api.json("PATCH", "/api/v1/images/g-custom", map[string]any{"build": secret}, nil)
		}},
		{"API rebuild", func() *http.Response {
			return api.json("POST", "/api/v1/images/g-custom/rebuild", secret, nil)
		}},
		{"add form", func() *http.Response {
			return page.postForm("/groups/team-g/images", with(url.Values{"displayName": {"c"}, "type": {"cpu"}, "url": {"busybox"}}))
		}},
		{"build form", func() *http.Response {
			return page.postForm("/groups/team-g/images", with(url.Values{"kind": {"build"}, "displayName": {"d"}, "type": {"cpu"}, "baseImage": {"debian"}}))
		}},
		{"edit form", func() *http.Response {
			return page.postForm("/groups/team-g/images/g-img", with(url.Values{"displayName": {"g-img"}, "type": {"cpu"}, "url": {"busybox"}}))
		}},
		{"rebuild form", func() *http.Response {
			return page.postForm("/groups/team-g/images/g-custom/rebuild", with(url.Values{"baseImage": {"debian"}}))
		}},
	}
	images := env.imageCount()
	for _, tc := range cases {
		res := tc.send()
		body := readAll(t, res.Body)
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Only an administrator may choose a pull secret") {
			t.Errorf("%s: %d, want 422 with the pull-secret reason", tc.name, res.StatusCode)
		}
	}
	if n := env.imageCount(); n != images {
		t.Errorf("%d images after refused requests, want %d", n, images)
	}
	for _, name := range []string{"g-img", "g-custom"} {
		img, err := env.store.FindImage(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if img.PullSecret != "" || (img.Recipe != nil && img.Recipe.PullSecret != "") {
			t.Errorf("%s took the secret: %+v", name, img)
		}
	}
	if builds, _ := env.store.ListBuilds(ctx, "g-custom"); len(builds) != 0 {
		t.Errorf("%d builds queued by refused requests", len(builds))
	}
}
