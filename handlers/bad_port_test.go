package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestPortsOutOfRangeAreRefused: a registry port above 65535 (or 0), in an
// image's URLs, a recipe's base image or a secret's registry host, is
// refused at its field on the API and the pages; 65535 is taken.
func TestPortsOutOfRangeAreRefused(t *testing.T) {
	env, admin := newBadBodyEnv(t)
	const port = "from 1 to 65535"
	cases := []badRequestCase{
		postAPI("image url", "/api/v1/images", map[string]any{"displayName": "new-image", "type": "cpu", "url": "localhost:70000/x", "global": true},
			422, port, "url"),
		postAPI("image urlForGpu", "/api/v1/images", map[string]any{"displayName": "new-image", "type": "universal", "url": "busybox",
			"useGpuUrl": true, "urlForGpu": "registry.example.com:65536/cuda", "global": true}, 422, port, "urlForGpu"),
		postAPI("custom image base", "/api/v1/images", map[string]any{"displayName": "new-image", "type": "cpu", "global": true,
			"build": map[string]string{"baseImage": "localhost:99999/base:1"}}, 422, port, "baseImage"),
		postAPI("rebuild base", "/api/v1/images/custom/rebuild", map[string]string{"baseImage": "registry.example.com:0/base"}, 422, port, "baseImage"),
		{name: "API patch image url", method: "PATCH", path: "/api/v1/images/plain", contentType: jsonType,
			body: text(`{"url": "registry.example.com:123456/x"}`), status: 422, reason: port, field: "url"},
		postAPI("secret registryHost", "/api/v1/secrets", map[string]string{"name": "reg-a", "registryHost": "reg:99999", "username": "u", "password": "p"},
			422, port, "registryHost"),
		postAPI("secret registryHost port 0", "/api/v1/secrets", map[string]string{"name": "reg-a", "registryHost": "reg:0", "username": "u", "password": "p"},
			422, port, "registryHost"),

		postForm("image url", "/admin/images", url.Values{"displayName": {"new-image"}, "type": {"cpu"}, "url": {"localhost:70000/x"}, "global": {"on"}},
			422, port, "url"),
		postForm("custom image base", "/admin/images", url.Values{"kind": {"build"}, "displayName": {"new-image"}, "type": {"cpu"}, "global": {"on"},
			"baseImage": {"localhost:70000/base"}}, 422, port, "baseImage"),
		postForm("rebuild base", "/admin/images/custom/rebuild", url.Values{"baseImage": {"localhost:70000/base"}}, 422, port, "baseImage"),
		postForm("secret registryHost", "/admin/secrets", url.Values{"name": {"reg-a"}, "registryHost": {"reg:99999"}, "username": {"u"}, "password": {"p"}},
			422, port, "registryHost"),
	}
	runBadRequests(t, env, admin, cases)

	// Check asks no registry about such a reference.
	res := admin.htmx("POST", "/admin/images/-/check", url.Values{"url": {"localhost:70000/x"}})
	if body := readAll(t, res.Body); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, port) || len(env.inspected) != 0 {
		t.Errorf("check of port 70000: %d, inspected %v, %q", res.StatusCode, env.inspected, body)
	}
	// The highest port is a port.
	if res := admin.json("POST", "/api/v1/images", map[string]any{"displayName": "top-port", "type": "cpu", "url": "localhost:65535/x", "global": true}, nil); res.StatusCode != http.StatusCreated {
		t.Errorf("port 65535 in a URL: %d, want 201", res.StatusCode)
	}
	if res := admin.json("POST", "/api/v1/secrets", map[string]string{"name": "reg-b", "registryHost": "reg:65535", "username": "u", "password": "p"}, nil); res.StatusCode != http.StatusCreated {
		t.Errorf("port 65535 for a secret: %d, want 201", res.StatusCode)
	}
}
