package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// badImageCase is one bad value of one image field: the JSON body and form
// fields it goes with, and a piece of the reason expected at that field.
type badImageCase struct {
	name  string
	field string
	// set changes a valid image into the bad one (JSON field → value).
	set  map[string]any
	want string
}

// badImageCases is the table of bad values per field, run through the JSON
// API and through the form.
func badImageCases() []badImageCase {
	long := strings.Repeat("a", 64)
	return []badImageCase{
		{"displayName empty", "displayName", map[string]any{"displayName": ""}, "Required"},
		{"displayName too long", "displayName", map[string]any{"displayName": long}, "At most 63"},
		{"displayName uppercase", "displayName", map[string]any{"displayName": "MyImage"}, "uppercase"},
		{"displayName spaces", "displayName", map[string]any{"displayName": "My Image"}, "No spaces"},
		{"displayName inner space", "displayName", map[string]any{"displayName": "my image"}, "No spaces"},
		{"displayName leading space", "displayName", map[string]any{"displayName": " my-image"}, "No spaces"},
		{"displayName script", "displayName", map[string]any{"displayName": "<script>alert(1)</script>"}, "lowercase"},
		{"displayName Cyrillic а", "displayName", map[string]any{"displayName": "jupyter-dаta"}, "other characters"},
		{"displayName double quote", "displayName", map[string]any{"displayName": `my"image`}, "lowercase"},
		{"displayName single quote", "displayName", map[string]any{"displayName": "my'image"}, "lowercase"},
		{"displayName leading dash", "displayName", map[string]any{"displayName": "-image"}, "starting and ending"},
		{"displayName underscore", "displayName", map[string]any{"displayName": "my_image"}, "lowercase"},
		{"description too long", "description", map[string]any{"description": strings.Repeat("d", 1001)}, "At most 1000"},
		{"description control character", "description", map[string]any{"description": "bell\x07"}, "control"},
		{"type empty", "type", map[string]any{"type": ""}, "Required"},
		{"type unknown", "type", map[string]any{"type": "tpu"}, "Unknown type"},
		{"type uppercase", "type", map[string]any{"type": "GPU"}, "Unknown type"},
		{"type script", "type", map[string]any{"type": "<script>"}, "Unknown type"},
		{"url empty", "url", map[string]any{"url": ""}, "Required"},
		{"url spaces", "url", map[string]any{"url": "docker.io/my image"}, "spaces"},
		{"url uppercase", "url", map[string]any{"url": "docker.io/Library/Python"}, "reference"},
		{"url scheme", "url", map[string]any{"url": "https://docker.io/library/python"}, "reference"},
		{"url script", "url", map[string]any{"url": "<script>alert(1)</script>"}, "reference"},
		{"url Cyrillic о", "url", map[string]any{"url": "dоcker.io/library/python"}, "reference"},
		{"url quotes", "url", map[string]any{"url": `"python:3.12"`}, "reference"},
		{"url empty tag", "url", map[string]any{"url": "python:"}, "reference"},
		{"url bad digest", "url", map[string]any{"url": "python@sha256:abc"}, "reference"},
		{"url too long", "url", map[string]any{"url": "docker.io/" + strings.Repeat("a", 300)}, "reference"},
		{"urlForGpu empty", "urlForGpu", map[string]any{"type": "universal", "useGpuUrl": true, "urlForGpu": ""}, "Required"},
		{"urlForGpu malformed", "urlForGpu", map[string]any{"type": "universal", "useGpuUrl": true, "urlForGpu": "cuda image"}, "spaces"},
		{"urlForGpu uppercase", "urlForGpu", map[string]any{"type": "universal", "useGpuUrl": true, "urlForGpu": "NVIDIA/cuda"}, "reference"},
		{"pullSecret unknown", "pullSecret", map[string]any{"pullSecret": "nope"}, "Unknown secret"},
		{"groups unknown", "groups", map[string]any{"global": false, "groups": []string{"team-a", "nope"}}, "Unknown group"},
	}
}

// validImageJSON is a valid image for the JSON API, before a case changes it.
func validImageJSON() map[string]any {
	return map[string]any{
		"displayName": "jupyter-base", "description": "Notebook image", "type": "cpu",
		"url": "docker.io/jupyter/base-notebook:latest", "global": true,
	}
}

func TestBadImageInputJSON(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	api := env.signIn("admin")
	for _, tc := range badImageCases() {
		t.Run(tc.name, func(t *testing.T) {
			body := validImageJSON()
			for k, v := range tc.set {
				body[k] = v
			}
			var e errorBody
			res := api.json(http.MethodPost, "/api/v1/images", body, &e)
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422 (%+v)", res.StatusCode, e)
			}
			if got := e.Fields[tc.field]; !strings.Contains(got, tc.want) {
				t.Errorf("fields[%q] = %q, want it to say %q (all: %v)", tc.field, got, tc.want, e.Fields)
			}
			if e.Error == "" {
				t.Error("no error message")
			}
		})
	}
	if n := env.imageCount(); n != 0 {
		t.Fatalf("%d images stored after bad input, want 0", n)
	}
}

// formOf turns a JSON-shaped image into the add form's fields, toggles
// included.
func formOf(body map[string]any) url.Values {
	f := url.Values{}
	for k, v := range body {
		switch v := v.(type) {
		case string:
			f.Set(k, v)
		case bool:
			if v {
				f.Set(k, "on")
			}
		case []string:
			f[k] = v
		}
	}
	if f.Get("pullSecret") != "" {
		f.Set("usePullSecret", "on")
	}
	return f
}

func TestBadImageInputForm(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	admin := env.signIn("admin")
	for _, tc := range badImageCases() {
		t.Run(tc.name, func(t *testing.T) {
			body := validImageJSON()
			for k, v := range tc.set {
				body[k] = v
			}
			form := formOf(body)
			res := admin.postForm("/admin/images", form)
			doc := admin.readPage(res)
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", res.StatusCode)
			}
			got := doc.Find("#" + tc.field + "-error").Text()
			if !strings.Contains(got, tc.want) {
				t.Errorf("error at %s = %q, want it to say %q", tc.field, got, tc.want)
			}
			if !doc.Find(`[data-field="` + tc.field + `"]`).HasClass("has-error") {
				t.Errorf("the %s field is not marked as wrong", tc.field)
			}
			// The typed values are kept.
			if v, _ := doc.Find("#displayName").Attr("value"); v != form.Get("displayName") {
				t.Errorf("displayName kept as %q, want %q", v, form.Get("displayName"))
			}
			if v := doc.Find("#description").Text(); v != form.Get("description") {
				t.Errorf("description kept as %q, want %q", v, form.Get("description"))
			}
		})
	}
	if n := env.imageCount(); n != 0 {
		t.Fatalf("%d images stored after bad input, want 0", n)
	}
}

func TestBadJSON(t *testing.T) {
	env := newTestEnv(t)
	api := env.signIn("admin")
	cases := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"not JSON", "displayName=x", http.StatusBadRequest, ""},
		{"truncated", `{"displayName": "x"`, http.StatusBadRequest, ""},
		{"array", `[1, 2]`, http.StatusBadRequest, ""},
		{"null", `null`, http.StatusBadRequest, ""},
		{"empty", ``, http.StatusBadRequest, ""},
		{"two values", `{} {}`, http.StatusBadRequest, ""},
		{"unknown field", `{"displayName": "x", "type": "cpu", "url": "busybox", "displayname": "y"}`, http.StatusUnprocessableEntity, "displayname"},
		{"wrong type", `{"displayName": 5, "type": "cpu", "url": "busybox"}`, http.StatusUnprocessableEntity, "displayName"},
		{"groups not a list", `{"displayName": "x", "type": "cpu", "url": "busybox", "groups": "team"}`, http.StatusUnprocessableEntity, "groups"},
		{"global not a bool", `{"displayName": "x", "type": "cpu", "url": "busybox", "global": "yes"}`, http.StatusUnprocessableEntity, "global"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e errorBody
			res := api.json(http.MethodPost, "/api/v1/images", tc.body, &e)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%+v)", res.StatusCode, tc.status, e)
			}
			if e.Error == "" {
				t.Error("no reason given")
			}
			if tc.field != "" && e.Fields[tc.field] == "" {
				t.Errorf("no reason at %q: %v", tc.field, e.Fields)
			}
		})
	}
	if n := env.imageCount(); n != 0 {
		t.Fatalf("%d images stored, want 0", n)
	}
}

func TestBadSecretAndGroupInput(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	valid := map[string]any{"name": "registry-a", "registryHost": "registry.example.com", "username": "robot", "password": "s3cret-pass"}
	secretCases := []struct {
		field string
		value any
		want  string
	}{
		{"name", "", "Required"},
		{"name", "Registry", "uppercase"},
		{"name", "my secret", "No spaces"},
		{"name", "<script>", "lowercase"},
		{"name", "sеcret", "other characters"}, // Cyrillic е
		{"registryHost", "https://registry.example.com", "registry host"},
		{"registryHost", "registry.example.com/path", "registry host"},
		{"registryHost", "", "Required"},
		{"username", "", "Required"},
		{"password", "", "Required"},
	}
	for _, tc := range secretCases {
		body := map[string]any{}
		for k, v := range valid {
			body[k] = v
		}
		body[tc.field] = tc.value
		var e errorBody
		if res := admin.json(http.MethodPost, "/api/v1/secrets", body, &e); res.StatusCode != http.StatusUnprocessableEntity ||
			!strings.Contains(e.Fields[tc.field], tc.want) {
			t.Errorf("API secret %s=%q: %d %v, want 422 saying %q", tc.field, tc.value, res.StatusCode, e.Fields, tc.want)
		}
		form := formOf(body)
		res := admin.postForm("/admin/secrets", form)
		doc := admin.readPage(res)
		if got := doc.Find("#" + tc.field + "-error").Text(); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(got, tc.want) {
			t.Errorf("form secret %s=%q: %d %q, want 422 saying %q", tc.field, tc.value, res.StatusCode, got, tc.want)
		}
		if doc.Find("#password").AttrOr("value", "") != "" {
			t.Errorf("the password came back in the form")
		}
	}
	groupCases := []struct {
		field, value, want string
	}{
		{"name", "", "Required"},
		{"name", "Team", "uppercase"},
		{"name", "team a", "No spaces"},
		{"name", "<b>team</b>", "lowercase"},
		{"name", strings.Repeat("t", 64), "At most 63"},
		{"displayName", strings.Repeat("d", 101), "At most 100"},
	}
	for _, tc := range groupCases {
		body := map[string]any{"name": "team", tc.field: tc.value}
		var e errorBody
		if res := admin.json(http.MethodPost, "/api/v1/groups", body, &e); res.StatusCode != http.StatusUnprocessableEntity ||
			!strings.Contains(e.Fields[tc.field], tc.want) {
			t.Errorf("API group %s=%q: %d %v, want 422 saying %q", tc.field, tc.value, res.StatusCode, e.Fields, tc.want)
		}
		res := admin.postForm("/admin/groups", formOf(body))
		doc := admin.readPage(res)
		if got := doc.Find("#" + tc.field + "-error").Text(); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(got, tc.want) {
			t.Errorf("form group %s=%q: %d %q, want 422 saying %q", tc.field, tc.value, res.StatusCode, got, tc.want)
		}
	}
	secrets, _ := env.store.ListSecrets(t.Context())
	groups, _ := env.store.ListGroups(t.Context())
	if len(secrets) != 0 || len(groups) != 0 {
		t.Errorf("stored %d secrets and %d groups after bad input, want none", len(secrets), len(groups))
	}
}
