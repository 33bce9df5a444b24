package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"imagehub/store"
)

// TestSettingsPage: the Settings page shows the flags' values where the
// page has none, refuses a bad URL or a secret for another host at its
// field (422, the other values kept), and saves what the next build uses.
func TestSettingsPage(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateSecret("mirror") // for registry.example.com
	env.store.SetPackageDefaults(store.PackageSettings{AptMirror: "http://apt.flag.example.com/debian"})
	admin := env.signIn("admin")
	doc, status := admin.getPage("/admin/settings")
	if status != http.StatusOK {
		t.Fatalf("GET /admin/settings: %d", status)
	}
	if ph, _ := doc.Find("#aptMirror").Attr("placeholder"); ph != "http://apt.flag.example.com/debian" {
		t.Errorf("the APT mirror field shows %q, want the flag's value", ph)
	}
	if doc.Find(`#pipSecret option[value="mirror"]`).Length() != 1 {
		t.Error("the secrets are not offered")
	}
	if doc.Find(`nav a[href="/admin/settings"]`).Length() != 1 {
		t.Error("no Settings link in the navigation")
	}

	res := admin.postForm("/admin/settings", url.Values{
		"pipIndexUrl": {"pypi.example.com/simple"}, "condaChannels": {"conda-forge"},
		"aptMirror": {"http://other.example.com/"}, "aptSecret": {"mirror"},
	})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad settings: %d, want 422", res.StatusCode)
	}
	doc = admin.readPage(res)
	for _, f := range []string{"pipIndexUrl", "aptSecret"} {
		if doc.Find(`[data-field="`+f+`"] .field-error`).Length() != 1 {
			t.Errorf("no error at %s", f)
		}
	}
	if v, _ := doc.Find("#condaChannels").Attr("value"); v != "conda-forge" {
		t.Errorf("the form lost the channels: %q", v)
	}
	if got, _ := env.store.PackageSettings(t.Context()); got != (store.PackageSettings{}) {
		t.Errorf("refused settings were saved: %+v", got)
	}

	res = admin.postForm("/admin/settings", url.Values{
		"pipIndexUrl": {" https://registry.example.com/simple "}, "pipSecret": {"mirror"}, "condaChannels": {"conda-forge"},
	})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("good settings: %d %s", res.StatusCode, readAll(t, res.Body))
	}
	want := store.PackageSettings{PipIndexURL: "https://registry.example.com/simple", PipSecret: "mirror", CondaChannels: "conda-forge"}
	if got, _ := env.store.PackageSettings(t.Context()); got != want {
		t.Errorf("saved %+v, want %+v", got, want)
	}
	doc, _ = admin.getPage("/admin/settings")
	if !strings.Contains(doc.Find(".flash").Text(), "the next build uses them") {
		t.Errorf("no notice after saving: %q", doc.Find(".flash").Text())
	}
	if v, _ := doc.Find(`#pipSecret option[selected]`).Attr("value"); v != "mirror" {
		t.Errorf("the saved secret is not selected: %q", v)
	}
	// A secret in use is not deleted from under the settings.
	if res := admin.json(http.MethodDelete, "/api/v1/secrets/mirror", nil, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("deleting the pip mirror's secret: %d, want 409", res.StatusCode)
	}
}

// TestSettingsAPI: GET answers the page's fields, the flags' and the
// result; PUT replaces the page's fields, refusing bad ones (422 at the
// field) and unknown ones.
func TestSettingsAPI(t *testing.T) {
	env := newTestEnv(t)
	env.store.SetPackageDefaults(store.PackageSettings{PipIndexURL: "https://flag.example.com/simple"})
	api := env.withToken("admin", store.ScopeAdmin)
	var body packageSettingsBody
	res := api.json(http.MethodPut, "/api/v1/settings/packages", map[string]any{"aptMirror": "http://apt.example.com/", "condaChannels": "conda-forge"}, &body)
	if res.StatusCode != http.StatusOK || body.AptMirror != "http://apt.example.com/" || body.Defaults.PipIndexURL != "https://flag.example.com/simple" ||
		body.Effective.PipIndexURL != "https://flag.example.com/simple" || body.Effective.AptMirror != "http://apt.example.com/" {
		t.Errorf("PUT: %d %+v", res.StatusCode, body)
	}
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"aptMirror": "http://127.0.0.1:3142/"}, "aptMirror"},
		{map[string]any{"pipExtraIndexUrl": "https://u:p@pypi.example.com/simple"}, "pipExtraIndexUrl"},
		{map[string]any{"pipSecret": "missing", "pipIndexUrl": "https://pypi.example.com/simple"}, "pipSecret"},
		{map[string]any{"aptmirror": "http://apt.example.com/"}, "aptmirror"},
	} {
		var e errorBody
		res := api.json(http.MethodPut, "/api/v1/settings/packages", tc.body, &e)
		if res.StatusCode != http.StatusUnprocessableEntity || e.Fields[tc.field] == "" {
			t.Errorf("PUT %v: %d %+v, want 422 at %s", tc.body, res.StatusCode, e, tc.field)
		}
	}
	// What GET answers can be sent back as it is.
	res = api.json(http.MethodGet, "/api/v1/settings/packages", nil, &body)
	if res.StatusCode != http.StatusOK || body.AptMirror != "http://apt.example.com/" || body.CondaChannels != "conda-forge" {
		t.Fatalf("GET: %d %+v", res.StatusCode, body)
	}
	if res := api.json(http.MethodPut, "/api/v1/settings/packages", body, nil); res.StatusCode != http.StatusOK {
		t.Errorf("PUT of GET's answer: %d", res.StatusCode)
	}
}
