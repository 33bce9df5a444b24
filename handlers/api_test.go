package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"imagehub/store"
)

func TestAPIImagesCRUD(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	env.mustCreateSecret("registry-a")
	api := env.withToken("admin", store.ScopeAdmin)

	var created store.Image
	res := api.json(http.MethodPost, "/api/v1/images", map[string]any{
		"displayName": "jupyter", "description": "<b>bold</b>", "type": "universal", "url": "jupyter/base-notebook",
		"useGpuUrl": true, "urlForGpu": "jupyter/cuda-notebook", "pullSecret": "registry-a", "groups": []string{"team-a"},
	}, &created)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", res.StatusCode)
	}
	if created.Name != "jupyter" || created.URL != "docker.io/jupyter/base-notebook:latest" ||
		created.URLForGPU != "docker.io/jupyter/cuda-notebook:latest" || created.Owner != "system" || !created.Ready {
		t.Errorf("created %+v", created)
	}

	var got store.Image
	if res := api.json(http.MethodGet, "/api/v1/images/jupyter", nil, &got); res.StatusCode != http.StatusOK || got.Description != "<b>bold</b>" {
		t.Errorf("GET: %d %+v", res.StatusCode, got)
	}

	// PATCH changes only what is sent.
	var patched store.Image
	res = api.json(http.MethodPatch, "/api/v1/images/jupyter", map[string]any{"description": "Notebooks"}, &patched)
	if res.StatusCode != http.StatusOK || patched.Description != "Notebooks" || patched.URLForGPU != created.URLForGPU ||
		patched.PullSecret != "registry-a" || strings.Join(patched.Groups, ",") != "team-a" || patched.Type != store.TypeUniversal {
		t.Errorf("PATCH description: %d %+v", res.StatusCode, patched)
	}
	res = api.json(http.MethodPatch, "/api/v1/images/jupyter", map[string]any{"global": true, "pullSecret": nil}, &patched)
	if res.StatusCode != http.StatusOK || !patched.Global || len(patched.Groups) != 0 || patched.PullSecret != "" || patched.Description != "Notebooks" {
		t.Errorf("PATCH global: %d %+v", res.StatusCode, patched)
	}
	// A body read with GET can be sent back as it is: read-only fields are ignored.
	raw := map[string]any{}
	api.json(http.MethodGet, "/api/v1/images/jupyter", nil, &raw)
	raw["name"], raw["description"] = "renamed", "Round trip"
	res = api.json(http.MethodPatch, "/api/v1/images/jupyter", raw, &patched)
	if res.StatusCode != http.StatusOK || patched.Name != "jupyter" || patched.Description != "Round trip" {
		t.Errorf("PATCH round trip: %d %+v", res.StatusCode, patched)
	}
	var e errorBody
	res = api.json(http.MethodPatch, "/api/v1/images/jupyter", map[string]any{"type": "tpu"}, &e)
	if res.StatusCode != http.StatusUnprocessableEntity || e.Fields["type"] == "" {
		t.Errorf("PATCH bad type: %d %+v", res.StatusCode, e)
	}
	if img, _ := env.store.FindImage(t.Context(), "jupyter"); img.Type != store.TypeUniversal {
		t.Errorf("a refused PATCH changed the type to %q", img.Type)
	}
	res = api.json(http.MethodPatch, "/api/v1/images/nope", map[string]any{"description": "x"}, &e)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(e.Error, "nope") {
		t.Errorf("PATCH unknown: %d %+v", res.StatusCode, e)
	}

	if res := api.json(http.MethodDelete, "/api/v1/images/jupyter", nil, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: %d, want 204", res.StatusCode)
	}
	if res := api.json(http.MethodGet, "/api/v1/images/jupyter", nil, &e); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d, want 404", res.StatusCode)
	}
	if res := api.json(http.MethodDelete, "/api/v1/images/jupyter", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", res.StatusCode)
	}
}

func TestAPIImagesList(t *testing.T) {
	env := newTestEnv(t)
	for i := 0; i < 25; i++ {
		env.mustCreateImage(testImage(fmt.Sprintf("cpu-%02d", i)))
	}
	env.mustCreateImage(&store.Image{DisplayName: "cuda", Type: store.TypeGPU, URL: "docker.io/nvidia/cuda:12.4", Global: true})
	api := env.withToken("admin", store.ScopeRead)
	var list struct {
		Items []store.Image `json:"items"`
		Total int           `json:"total"`
	}
	cases := []struct {
		query      string
		items, tot int
	}{
		{"", 20, 26},
		{"?page=2", 6, 26},
		{"?perPage=100", 26, 26},
		{"?type=gpu", 1, 1},
		{"?q=cpu-1&perPage=5", 5, 10},
		{"?q=nothing", 0, 0},
	}
	for _, tc := range cases {
		list.Items, list.Total = nil, 0
		res := api.json(http.MethodGet, "/api/v1/images"+tc.query, nil, &list)
		if res.StatusCode != http.StatusOK || len(list.Items) != tc.items || list.Total != tc.tot {
			t.Errorf("GET %s: %d, %d items of %d, want %d of %d", tc.query, res.StatusCode, len(list.Items), list.Total, tc.items, tc.tot)
		}
	}
	res := api.json(http.MethodGet, "/api/v1/images?q=nothing", nil, nil)
	if body := readAll(t, res.Body); !strings.Contains(body, `"items":[]`) {
		t.Errorf("an empty list is not []: %s", body)
	}
	for _, q := range []string{"?type=tpu", "?page=0", "?page=x", "?perPage=1000"} {
		var e errorBody
		if res := api.json(http.MethodGet, "/api/v1/images"+q, nil, &e); res.StatusCode != http.StatusUnprocessableEntity || len(e.Fields) != 1 {
			t.Errorf("GET %s: %d %+v, want 422 at its field", q, res.StatusCode, e)
		}
	}
}

func TestAPISecrets(t *testing.T) {
	env := newTestEnv(t)
	api := env.withToken("admin", store.ScopeAdmin)
	res := api.json(http.MethodPost, "/api/v1/secrets", map[string]any{
		"name": "registry-a", "registryHost": "registry.example.com", "username": "robot", "password": "s3cret-pass",
	}, nil)
	body := readAll(t, res.Body)
	if res.StatusCode != http.StatusCreated || strings.Contains(body, "s3cret") || strings.Contains(body, "password") {
		t.Errorf("POST: %d %s (the password must not come back)", res.StatusCode, body)
	}
	res = api.json(http.MethodGet, "/api/v1/secrets", nil, nil)
	body = readAll(t, res.Body)
	if !strings.Contains(body, `"total":1`) || !strings.Contains(body, "robot") || strings.Contains(body, "s3cret") {
		t.Errorf("GET: %s", body)
	}
	env.mustCreateImage(&store.Image{DisplayName: "private", Type: store.TypeCPU, URL: "registry.example.com/app:1", PullSecret: "registry-a", Global: true})
	var e errorBody
	if res := api.json(http.MethodDelete, "/api/v1/secrets/registry-a", nil, &e); res.StatusCode != http.StatusConflict || !strings.Contains(e.Error, "used by 1 image") {
		t.Errorf("DELETE in use: %d %+v, want 409", res.StatusCode, e)
	}
	env.store.DeleteImage(t.Context(), "private")
	if res := api.json(http.MethodDelete, "/api/v1/secrets/registry-a", nil, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: %d, want 204", res.StatusCode)
	}
}

func TestAPIGroupsAndMe(t *testing.T) {
	env := newTestEnv(t)
	api := env.withToken("admin", store.ScopeAdmin)
	var g store.Group
	if res := api.json(http.MethodPost, "/api/v1/groups", map[string]any{"name": "team-a", "displayName": "Team A"}, &g); res.StatusCode != http.StatusCreated || g.Name != "team-a" {
		t.Fatalf("POST group: %d %+v", res.StatusCode, g)
	}
	var e errorBody
	if res := api.json(http.MethodPost, "/api/v1/groups", map[string]any{"name": "team-a"}, &e); res.StatusCode != http.StatusUnprocessableEntity || e.Fields["name"] == "" {
		t.Errorf("duplicate group: %d %+v", res.StatusCode, e)
	}
	res := api.json(http.MethodGet, "/api/v1/groups", nil, nil)
	if body := readAll(t, res.Body); !strings.Contains(body, `"total":1`) || !strings.Contains(body, "Team A") {
		t.Errorf("GET groups: %s", body)
	}

	if err := env.store.SetMember(t.Context(), "team-a", "alice", store.RoleMember); err != nil {
		t.Fatal(err)
	}
	env.mustCreateImage(testImage("everyone"))
	env.mustCreateImage(&store.Image{DisplayName: "team-only", Type: store.TypeCPU, URL: "docker.io/library/python:3", Groups: []string{"team-a"}})
	env.mustCreateImage(&store.Image{DisplayName: "hidden", Type: store.TypeCPU, URL: "docker.io/library/python:3"})
	own := &store.Image{DisplayName: "team-own", Type: store.TypeCPU, URL: "docker.io/library/python:3", Owner: "team-a"}
	env.mustCreateImage(own)
	var me struct {
		Items []struct {
			Name   string `json:"name"`
			System *bool  `json:"system"`
		} `json:"items"`
		Total int `json:"total"`
	}
	alice := env.withToken("alice", store.ScopeRead)
	if res := alice.json(http.MethodGet, "/api/v1/me/images", nil, &me); res.StatusCode != http.StatusOK || me.Total != 3 {
		t.Fatalf("GET /me/images: %d %+v", res.StatusCode, me)
	}
	want := map[string]bool{"everyone": true, "team-only": true, "team-own": false}
	for _, it := range me.Items {
		if it.System == nil || *it.System != want[it.Name] {
			t.Errorf("%s: system=%v, want %v", it.Name, it.System, want[it.Name])
		}
	}
}
