package handlers

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"imagehub/store"
)

// badRequestCase is one request that must be refused and change nothing:
// the status, a piece of the reason, and the field it is given at ("" when
// the refusal is of the whole request).
type badRequestCase struct {
	name   string
	method string
	path   string
	// contentType and header are sent as they are; the API gets the CSRF
	// header, a form carries its token in body.
	contentType string
	header      map[string]string
	body        func(c *client) io.Reader
	status      int
	reason      string
	field       string
}

// runBadRequests sends each case with c, in a subtest, and checks that it
// is refused as the case says and that nothing changed (assertUnchanged).
func runBadRequests(t *testing.T, env *testEnv, c *client, cases []badRequestCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env.assertUnchanged(t, func() {
				h := map[string]string{}
				if tc.contentType != "" {
					h["Content-Type"] = tc.contentType
				}
				if strings.HasPrefix(tc.path, "/api/") {
					h["X-CSRF-Token"], h["Accept"] = c.csrf, "application/json"
				}
				for k, v := range tc.header {
					h[k] = v
				}
				var body io.Reader
				if tc.body != nil {
					body = tc.body(c)
				}
				res := c.request(tc.method, tc.path, body, h)
				msg, fields := readRefusal(t, res)
				if res.StatusCode != tc.status {
					t.Errorf("status %d, want %d (%q %v)", res.StatusCode, tc.status, msg, fields)
					return
				}
				switch {
				case tc.field == "" && !strings.Contains(msg, tc.reason):
					t.Errorf("message %q, want it to say %q", msg, tc.reason)
				case tc.field != "" && strings.Contains(fields[tc.field], tc.reason):
				case tc.field != "" && fields == nil && strings.Contains(msg, tc.reason) && strings.Contains(msg, tc.field):
					// A page's form refused before its handler ran: the error
					// page names the field.
				case tc.field != "":
					t.Errorf("reason at %s %q (message %q, all %v), want it to say %q", tc.field, fields[tc.field], msg, fields, tc.reason)
				}
			})
		})
	}
}

// readRefusal reads an error answer: the message and the reasons at fields,
// from the JSON body, or from a page (its error message, or the form it
// brought back with the reasons under the fields).
func readRefusal(t *testing.T, res *http.Response) (string, map[string]string) {
	t.Helper()
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt == "application/json" {
		var e errorBody
		if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
			t.Fatalf("status %d: decoding the error: %v", res.StatusCode, err)
		}
		return e.Error, e.Fields
	}
	doc := parseHTML(t, readAll(t, res.Body))
	var fields map[string]string
	doc.Find(".field-error[id$='-error']").Each(func(_ int, s *goquery.Selection) {
		if fields == nil {
			fields = map[string]string{}
		}
		id, _ := s.Attr("id")
		fields[strings.TrimSuffix(id, "-error")] = strings.TrimSpace(s.Text())
	})
	return strings.TrimSpace(doc.Find(".error-message").Text()), fields
}

// chunked hides the length of a body, so that the client sends it chunked.
type chunked struct{ io.Reader }

// overLimit is a body that starts as prefix and goes on past maxBody,
// chunked.
func overLimit(prefix string) func(*client) io.Reader {
	return func(*client) io.Reader {
		return chunked{io.MultiReader(strings.NewReader(prefix), strings.NewReader(strings.Repeat(" ", maxBody)))}
	}
}

// text is a body sent as it is.
func text(s string) func(*client) io.Reader {
	return func(*client) io.Reader { return strings.NewReader(s) }
}

// formOfCSRF is a urlencoded form with the client's CSRF token.
func formOfCSRF(v url.Values) func(*client) io.Reader {
	return func(c *client) io.Reader {
		v.Set("_csrf", c.csrf)
		return strings.NewReader(v.Encode())
	}
}

// gzipped is s compressed with gzip.
func gzipped(s string) func(*client) io.Reader {
	return func(*client) io.Reader {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write([]byte(s))
		w.Close()
		return &buf
	}
}

// multipartForm is a multipart body with the client's CSRF token and the
// fields given, its closing boundary left off when truncated.
func multipartForm(fields map[string]string, truncated bool) func(*client) io.Reader {
	return func(c *client) io.Reader {
		var b strings.Builder
		part := func(name, value string) {
			b.WriteString("--XyZ\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n")
		}
		part("_csrf", c.csrf)
		for _, k := range sortedKeys(fields) {
			part(k, fields[k])
		}
		if !truncated {
			b.WriteString("--XyZ--\r\n")
		}
		return strings.NewReader(b.String())
	}
}

const (
	multipartType = "multipart/form-data; boundary=XyZ"
	formType      = "application/x-www-form-urlencoded"
	jsonType      = "application/json"
)

// newBadBodyEnv is a server with a custom image "custom" (no build waiting,
// so that a rebuild would be queued) and an existing image "plain", and an
// administrator signed in.
func newBadBodyEnv(t *testing.T) (*testEnv, *client) {
	env := newTestEnv(t)
	env.mustCreateImage(&store.Image{DisplayName: "custom", Global: true,
		Recipe: &store.Recipe{BaseImage: "docker.io/library/debian:bookworm", Apt: "curl"}})
	env.mustCreateImage(testImage("plain"))
	env.mustCreateGroup("team-a")
	return env, env.signIn("admin")
}

// TestUnreadableBodiesAreRefused: a body that cannot be read (over the
// limit, chunked or not; compressed; of another type than the route reads;
// a form that does not parse) is refused with its reason before any handler
// acts, on the API and on the pages.
func TestUnreadableBodiesAreRefused(t *testing.T) {
	env, admin := newBadBodyEnv(t)
	const tooLarge, gz = "over the limit of 1 MiB", `Content-Encoding "gzip" is not accepted`
	recipe := `{"baseImage": "debian:trixie", "apt": "vim"}`
	runBadRequests(t, env, admin, []badRequestCase{
		// The JSON API.
		{name: "API rebuild chunked over the limit", method: "POST", path: "/api/v1/images/custom/rebuild", contentType: jsonType,
			body: overLimit(recipe), status: 413, reason: tooLarge},
		{name: "API rebuild with a length over the limit", method: "POST", path: "/api/v1/images/custom/rebuild", contentType: jsonType,
			body: text(recipe + strings.Repeat(" ", maxBody)), status: 413, reason: tooLarge},
		{name: "API rebuild gzip", method: "POST", path: "/api/v1/images/custom/rebuild", contentType: jsonType,
			header: map[string]string{"Content-Encoding": "gzip"}, body: gzipped(recipe), status: 415, reason: gz},
		{name: "API rebuild gzip declared on plain JSON", method: "POST", path: "/api/v1/images/custom/rebuild", contentType: jsonType,
			header: map[string]string{"Content-Encoding": "identity, gzip"}, body: text(recipe), status: 415, reason: gz},
		{name: "API rebuild as a form", method: "POST", path: "/api/v1/images/custom/rebuild", contentType: formType,
			body: text("baseImage=debian"), status: 415, reason: "Send the body as JSON"},
		{name: "API create image as text", method: "POST", path: "/api/v1/images", contentType: "text/plain",
			body: text(`{"displayName": "x", "type": "cpu", "url": "busybox"}`), status: 415, reason: "Send the body as JSON"},
		{name: "API create image chunked over the limit", method: "POST", path: "/api/v1/images", contentType: jsonType,
			body: overLimit(`{"displayName": "x", "type": "cpu", "url": "busybox"}`), status: 413, reason: tooLarge},
		{name: "API patch image chunked over the limit", method: "PATCH", path: "/api/v1/images/plain", contentType: jsonType,
			body: overLimit(`{"description": "x"}`), status: 413, reason: tooLarge},
		{name: "API create group deflate", method: "POST", path: "/api/v1/groups", contentType: jsonType,
			header: map[string]string{"Content-Encoding": "deflate"}, body: text(`{"name": "team-b"}`), status: 415, reason: "deflate"},
		{name: "API create secret gzip", method: "POST", path: "/api/v1/secrets", contentType: jsonType, header: map[string]string{"Content-Encoding": "gzip"},
			body: gzipped(`{"name": "s", "registryHost": "r.example.com", "username": "u", "password": "p"}`), status: 415, reason: gz},

		// The pages' forms.
		{name: "rebuild form chunked over the limit", method: "POST", path: "/admin/images/custom/rebuild", contentType: formType,
			body: func(c *client) io.Reader {
				return overLimit(url.Values{"_csrf": {c.csrf}, "baseImage": {"debian:trixie"}, "apt": {"vim"}}.Encode() + "&pip=")(c)
			}, status: 413, reason: tooLarge},
		{name: "rebuild form as JSON", method: "POST", path: "/admin/images/custom/rebuild", contentType: jsonType,
			body: text(recipe), status: 415, reason: "Send the form as"},
		{name: "create group as JSON", method: "POST", path: "/admin/groups", contentType: jsonType,
			body: text(`{"name": "team-b"}`), status: 415, reason: "Send the form as"},
		{name: "create group with no type", method: "POST", path: "/admin/groups",
			body: formOfCSRF(url.Values{"name": {"team-b"}}), status: 415, reason: "Send the form as"},
		{name: "create group multipart without its closing boundary", method: "POST", path: "/admin/groups", contentType: multipartType,
			body: multipartForm(map[string]string{"name": "team-b"}, true), status: 400, reason: "The form could not be read"},
		{name: "create group multipart without a boundary", method: "POST", path: "/admin/groups", contentType: "multipart/form-data",
			body: multipartForm(map[string]string{"name": "team-b"}, false), status: 400, reason: "The form could not be read"},
		{name: "create group bad escape", method: "POST", path: "/admin/groups", contentType: formType,
			body: func(c *client) io.Reader { return strings.NewReader("_csrf=" + c.csrf + "&name=team-%zz") }, status: 400, reason: "The form could not be read"},
		{name: "create group chunked over the limit", method: "POST", path: "/admin/groups", contentType: formType,
			body: func(c *client) io.Reader { return overLimit("_csrf=" + c.csrf + "&name=team-b&displayName=")(c) }, status: 413, reason: tooLarge},
		{name: "create group gzip", method: "POST", path: "/admin/groups", contentType: formType, header: map[string]string{"Content-Encoding": "gzip"},
			body: func(c *client) io.Reader { return gzipped("_csrf=" + c.csrf + "&name=team-b")(c) }, status: 415, reason: gz},
		{name: "create image form as text", method: "POST", path: "/admin/images", contentType: "text/plain",
			body: text("displayName=x"), status: 415, reason: "Send the form as"},
		{name: "create secret chunked over the limit", method: "POST", path: "/admin/secrets", contentType: formType,
			body: func(c *client) io.Reader {
				return overLimit("_csrf=" + c.csrf + "&name=s&registryHost=r.example.com&username=u&password=")(c)
			},
			status: 413, reason: tooLarge},
	})
}

// TestReadableBodiesAreTaken: what the refusals above must not catch: a
// multipart form, "identity" encoding, a small chunked body, a rebuild
// without a body.
func TestReadableBodiesAreTaken(t *testing.T) {
	env, admin := newBadBodyEnv(t)
	res := admin.request("POST", "/admin/groups", multipartForm(map[string]string{"name": "team-m"}, false)(admin),
		map[string]string{"Content-Type": multipartType})
	if _, err := env.store.FindGroup(t.Context(), "team-m"); res.StatusCode != http.StatusSeeOther || err != nil {
		t.Errorf("multipart form: %d (%v), want 303 and the group", res.StatusCode, err)
	}
	res = admin.request("POST", "/api/v1/groups", chunked{strings.NewReader(`{"name": "team-c"}`)},
		map[string]string{"Content-Type": jsonType, "Content-Encoding": "identity", "X-CSRF-Token": admin.csrf})
	if res.StatusCode != http.StatusCreated {
		t.Errorf("chunked JSON with identity encoding: %d, want 201", res.StatusCode)
	}
	if res := admin.json("POST", "/api/v1/images/custom/rebuild", nil, nil); res.StatusCode != http.StatusAccepted {
		t.Errorf("rebuild without a body: %d, want 202", res.StatusCode)
	}
}
