package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/remote"
	"imagehub/store"
)

// authLog is a registry stand-in on a loopback listener that logs the
// Authorization header of every request and answers "unknown manifest"
// (or, with a realm, demands a bearer token from there).
type authLog struct {
	*httptest.Server
	realm string
	mu    sync.Mutex
	seen  []string
}

func newAuthLog(t *testing.T) *authLog {
	t.Helper()
	a := &authLog{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, r.URL.Path+" "+r.Header.Get("Authorization"))
		realm := a.realm
		a.mu.Unlock()
		switch {
		case r.URL.Path == "/token":
			fmt.Fprint(w, `{"token":"t"}`)
		case realm != "" && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="test"`, realm))
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown: the secret-sounding remote text"}]}`)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *authLog) host() string { return strings.TrimPrefix(a.URL, "http://") }

// setRealm makes the registry demand a bearer token from realm.
func (a *authLog) setRealm(realm string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.realm = realm
}

// credentials are the requests that carried an Authorization header.
func (a *authLog) credentials() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, s := range a.seen {
		if _, auth, _ := strings.Cut(s, " "); auth != "" {
			out = append(out, s)
		}
	}
	return out
}

func (a *authLog) requests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

// useRealInspect makes env's Check go to registries for real, through the
// outbound policy with these configured registries (reached over plain
// http, as the embedded one is).
func (env *testEnv) useRealInspect(registries ...string) {
	env.server.inspect = remote.NewPolicy(registries...).Inspect
	for _, r := range registries {
		env.server.insecure[r] = true
	}
}

// checkText posts a Check as c and returns the status and the fragment's text.
func checkText(t *testing.T, c *client, path string, form url.Values) (int, string) {
	t.Helper()
	res := c.htmx(http.MethodPost, path, form)
	doc := parseHTML(t, readAll(t, res.Body))
	return res.StatusCode, strings.Join(strings.Fields(doc.Text()), " ")
}

// TestCheckRefusesLoopbackForGroupAdmin: Check of an image on a loopback
// address that is no configured registry sends nothing there, and a group
// admin learns only that the check failed.
func TestCheckRefusesLoopbackForGroupAdmin(t *testing.T) {
	env := newGroupEnv(t)
	env.useRealInspect("127.0.0.1:5000")
	addr, conns := buildtest.Listener(t)
	ref := addr + "/team/app:1"

	gina := env.signIn("gina")
	status, text := checkText(t, gina, "/groups/team-g/images/-/check", url.Values{"url": {ref}})
	if status != http.StatusOK || !strings.Contains(text, "Check failed") || !strings.Contains(text, checkUnreachable) {
		t.Errorf("group admin's check of %s: %d %q", ref, status, text)
	}
	if strings.Contains(text, "loopback") {
		t.Errorf("the group admin was told why: %q", text)
	}
	admin := env.signIn("admin")
	_, text = checkText(t, admin, "/admin/images/-/check", url.Values{"url": {ref}})
	if !strings.Contains(text, "loopback") || !strings.Contains(text, "configured registries") {
		t.Errorf("admin's check of %s: %q, want the reason", ref, text)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the loopback listener saw %d connections", n)
	}
}

// TestCheckShowsRemoteTextToAdminsOnly: a registry's own error reaches an
// administrator, never a group admin.
func TestCheckShowsRemoteTextToAdminsOnly(t *testing.T) {
	env := newGroupEnv(t)
	reg := newAuthLog(t)
	env.useRealInspect(reg.host())
	ref := reg.host() + "/team/missing:1"
	_, text := checkText(t, env.signIn("gina"), "/groups/team-g/images/-/check", url.Values{"url": {ref}})
	if strings.Contains(text, "secret-sounding") || !strings.Contains(text, checkUnreachable) {
		t.Errorf("group admin: %q", text)
	}
	_, text = checkText(t, env.signIn("admin"), "/admin/images/-/check", url.Values{"url": {ref}})
	if !strings.Contains(text, "secret-sounding") {
		t.Errorf("admin: %q, want the registry's text", text)
	}
	if reg.requests() == 0 {
		t.Error("the configured registry was not asked")
	}
}

// TestCheckSecretStaysWithItsHost: Check offers a pull secret to its own
// registry host only, and never to a token service on another host. Both
// registries are loopback listeners that log every Authorization header.
func TestCheckSecretStaysWithItsHost(t *testing.T) {
	env := newTestEnv(t)
	home, other := newAuthLog(t), newAuthLog(t)
	env.useRealInspect(home.host(), other.host())
	if err := env.store.CreateSecret(context.Background(), &store.Secret{
		Name: "home", RegistryHost: home.host(), Username: "robot", Password: "host-bound-pw",
	}); err != nil {
		t.Fatal(err)
	}
	admin := env.signIn("admin")
	withSecret := func(ref string) url.Values {
		return url.Values{"url": {ref}, "usePullSecret": {"on"}, "pullSecret": {"home"}}
	}

	// The secret on an image of the other host: refused, nothing sent.
	status, text := checkText(t, admin, "/admin/images/-/check", withSecret(other.host()+"/team/app:1"))
	if status != http.StatusUnprocessableEntity || !strings.Contains(text, "is for "+home.host()) {
		t.Errorf("secret for %s on an image of %s: %d %q", home.host(), other.host(), status, text)
	}
	if n := other.requests(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}

	// Its own host demands a token from the other host: the credentials
	// stay home.
	home.setRealm(other.URL + "/token")
	_, text = checkText(t, admin, "/admin/images/-/check", withSecret(home.host()+"/team/app:1"))
	if !strings.Contains(text, "token service is on another host") {
		t.Errorf("realm on another host: %q", text)
	}
	if got := other.credentials(); len(got) != 0 {
		t.Errorf("the other host saw credentials: %q", got)
	}

	// The control: a token service on the secret's own host gets them.
	home.setRealm(home.URL + "/token")
	checkText(t, admin, "/admin/images/-/check", withSecret(home.host()+"/team/app:1"))
	if got := home.credentials(); !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "/token Basic ") }) {
		t.Errorf("the secret's own host saw %q, want its credentials at /token", got)
	}
	if got := other.credentials(); len(got) != 0 {
		t.Errorf("the other host saw credentials: %q", got)
	}
}

// TestCheckBuiltImageSecretForGroupAdmin: the secret of built images (the
// embedded registry's pull-only account) checks a group admin's built image
// on its own host, and only there: a group admin may not choose any other
// secret, and this one goes to no other host either.
func TestCheckBuiltImageSecretForGroupAdmin(t *testing.T) {
	env := newGroupEnv(t)
	home, other := newAuthLog(t), newAuthLog(t)
	env.useRealInspect(home.host(), other.host())
	env.server.pushSecret = "imagehub-registry"
	for _, sec := range []*store.Secret{
		{Name: "imagehub-registry", RegistryHost: home.host(), Username: "imagehub-pull", Password: "pull-only-pw"},
		{Name: "admins-own", RegistryHost: home.host(), Username: "robot", Password: "admin-pw"},
	} {
		if err := env.store.CreateSecret(context.Background(), sec); err != nil {
			t.Fatal(err)
		}
	}
	home.setRealm(home.URL + "/token") // so that credentials are asked for
	gina := env.signIn("gina")
	form := func(ref, secret string) url.Values {
		return url.Values{"url": {ref}, "usePullSecret": {"on"}, "pullSecret": {secret}}
	}
	checkText(t, gina, "/groups/team-g/images/-/check", form(home.host()+"/imagehub/team-app:1", "imagehub-registry"))
	if got := home.credentials(); !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "/token Basic ") }) {
		t.Errorf("the built images' registry saw %q, want the pull account's credentials", got)
	}
	status, text := checkText(t, gina, "/groups/team-g/images/-/check", form(other.host()+"/imagehub/team-app:1", "imagehub-registry"))
	if status != http.StatusUnprocessableEntity || other.requests() != 0 {
		t.Errorf("the built images' secret on another host: %d %q, %d requests there", status, text, other.requests())
	}
	status, text = checkText(t, gina, "/groups/team-g/images/-/check", form(home.host()+"/imagehub/team-app:1", "admins-own"))
	if status != http.StatusUnprocessableEntity || !strings.Contains(text, "Only an administrator") {
		t.Errorf("a group admin checking with an administrator's secret: %d %q", status, text)
	}
}
