package handlers

import (
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"testing"
)

// badByte stands for a byte that is not UTF-8 in the bodies below: JSON
// encoders would replace it, so it is put in after encoding.
const badByte = "\xff"

// jsonWithBadByte encodes v and puts badByte where a string holds "@BAD@".
func jsonWithBadByte(v any) func(*client) io.Reader {
	return func(*client) io.Reader {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return strings.NewReader(strings.ReplaceAll(string(b), "@BAD@", badByte))
	}
}

// postAPI and postForm make the cases of the JSON API and of the pages.
func postAPI(name, path string, body any, status int, reason, field string) badRequestCase {
	return badRequestCase{name: "API " + name, method: "POST", path: path, contentType: jsonType,
		body: jsonWithBadByte(body), status: status, reason: reason, field: field}
}

func postForm(name, path string, form url.Values, status int, reason, field string) badRequestCase {
	return badRequestCase{name: "form " + name, method: "POST", path: path, contentType: formType,
		body: formOfCSRF(form), status: status, reason: reason, field: field}
}

// TestTextThatIsNotUTF8IsRefused: a field whose text is not UTF-8 is
// refused at that field (422) on the API and the pages, whatever the route,
// rather than stored with U+FFFD or as raw bytes.
func TestTextThatIsNotUTF8IsRefused(t *testing.T) {
	env, admin := newBadBodyEnv(t)
	const bad, notUTF8 = "@BAD@", "Not valid UTF-8"
	image := func(field, value string) map[string]any {
		m := map[string]any{"displayName": "new-image", "description": "d", "type": "cpu", "url": "busybox", "global": true}
		m[field] = value
		return m
	}
	imageForm := func(field, value string) url.Values {
		v := url.Values{"displayName": {"new-image"}, "description": {"d"}, "type": {"cpu"}, "url": {"busybox"}, "global": {"on"}}
		v.Set(field, value)
		return v
	}
	secret := func(field, value string) map[string]any {
		m := map[string]any{"name": "reg-a", "registryHost": "registry.example.com", "username": "robot", "password": "s3cret"}
		m[field] = value
		return m
	}
	secretForm := func(field, value string) url.Values {
		v := url.Values{"name": {"reg-a"}, "registryHost": {"registry.example.com"}, "username": {"robot"}, "password": {"s3cret"}}
		v.Set(field, value)
		return v
	}
	cases := []badRequestCase{
		postAPI("image displayName", "/api/v1/images", image("displayName", "new"+bad), 422, notUTF8, "displayName"),
		postAPI("image description", "/api/v1/images", image("description", "caf"+bad), 422, notUTF8, "description"),
		postAPI("image url", "/api/v1/images", image("url", "busybox:"+bad), 422, notUTF8, "url"),
		postAPI("custom image recipe", "/api/v1/images",
			map[string]any{"displayName": "new-image", "type": "cpu", "global": true, "build": map[string]string{"baseImage": "debian", "apt": "curl" + bad}},
			422, notUTF8, "build"),
		postAPI("rebuild apt", "/api/v1/images/custom/rebuild", map[string]string{"baseImage": "debian", "apt": "vim" + bad}, 422, notUTF8, "apt"),
		postAPI("rebuild baseImage", "/api/v1/images/custom/rebuild", map[string]string{"baseImage": "debian" + bad}, 422, notUTF8, "baseImage"),
		postAPI("field name", "/api/v1/images", map[string]any{"displayName": "new-image", "descr" + bad + "iption": "d"}, 400, "not valid UTF-8", ""),
		{name: "API patch image description", method: "PATCH", path: "/api/v1/images/plain", contentType: jsonType,
			body: jsonWithBadByte(map[string]string{"description": bad}), status: 422, reason: notUTF8, field: "description"},
		postAPI("group name", "/api/v1/groups", map[string]string{"name": "team-" + bad}, 422, notUTF8, "name"),
		postAPI("group displayName", "/api/v1/groups", map[string]string{"name": "team-b", "displayName": "Team " + bad}, 422, notUTF8, "displayName"),
		postAPI("secret name", "/api/v1/secrets", secret("name", "reg-"+bad), 422, notUTF8, "name"),
		postAPI("secret registryHost", "/api/v1/secrets", secret("registryHost", "registry"+bad+".example.com"), 422, notUTF8, "registryHost"),
		postAPI("secret username", "/api/v1/secrets", secret("username", "robot"+bad), 422, notUTF8, "username"),
		postAPI("secret password", "/api/v1/secrets", secret("password", "pass"+bad), 422, notUTF8, "password"),

		postForm("image displayName", "/admin/images", imageForm("displayName", "new"+badByte), 422, notUTF8, "displayName"),
		postForm("image description", "/admin/images", imageForm("description", "caf"+badByte), 422, notUTF8, "description"),
		postForm("image url", "/admin/images", imageForm("url", "busybox:"+badByte), 422, notUTF8, "url"),
		postForm("edit image description", "/admin/images/plain", imageForm("description", badByte), 422, notUTF8, "description"),
		postForm("rebuild apt", "/admin/images/custom/rebuild", url.Values{"baseImage": {"debian"}, "apt": {"vim" + badByte}}, 422, notUTF8, "apt"),
		postForm("group name", "/admin/groups", url.Values{"name": {"team-" + badByte}}, 422, notUTF8, "name"),
		postForm("group displayName", "/admin/groups", url.Values{"name": {"team-b"}, "displayName": {badByte}}, 422, notUTF8, "displayName"),
		postForm("secret username", "/admin/secrets", secretForm("username", "robot"+badByte), 422, notUTF8, "username"),
		postForm("secret password", "/admin/secrets", secretForm("password", "pass"+badByte), 422, notUTF8, "password"),
		postForm("field name", "/admin/groups", url.Values{"name": {"team-b"}, "display" + badByte: {"x"}}, 400, "field name is not valid UTF-8", ""),
		postForm("group name in the query", "/admin/groups?name=team-%FF", url.Values{}, 422, notUTF8, "name"),
		{name: "form multipart group displayName", method: "POST", path: "/admin/groups", contentType: multipartType,
			body: multipartForm(map[string]string{"name": "team-b", "displayName": "Team " + badByte}, false), status: 422, reason: notUTF8, field: "displayName"},
	}
	runBadRequests(t, env, admin, cases)
}
