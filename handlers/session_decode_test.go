package handlers

import (
	"net/http"
	"net/url"
	"testing"
)

// TestDecodedSessions: a session cookie decoded once is not decoded again,
// yet each request gets values of its own (a change to one session shows
// in no other); a tampered cookie is still refused; sessions holding
// flashes are not kept.
func TestDecodedSessions(t *testing.T) {
	env := newTestEnv(t)
	c := env.signIn("alice")
	u, _ := url.Parse(env.http.URL)
	var cookie *http.Cookie
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == env.server.sessionName {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie after signing in")
	}
	request := func(value string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, env.http.URL+"/images", nil)
		r.AddCookie(&http.Cookie{Name: cookie.Name, Value: value})
		return r
	}
	first := env.server.decodeSession(request(cookie.Value))
	if first.Values[sessUser] != "alice" {
		t.Fatalf("decoded: %v", first.Values)
	}
	if _, kept := env.server.decoded.get(cookie.Value); !kept {
		t.Error("the decoded cookie is not kept")
	}
	first.Values[sessUser] = "mallory"
	first.AddFlash("changed")
	if again := env.server.decodeSession(request(cookie.Value)); again.Values[sessUser] != "alice" || len(again.Flashes()) != 0 {
		t.Errorf("a change to one request's session shows in the next: %v", again.Values)
	}
	tampered := []byte(cookie.Value)
	tampered[len(tampered)/2] ^= 1
	if sess := env.server.decodeSession(request(string(tampered))); len(sess.Values) != 0 || !sess.IsNew {
		t.Errorf("a tampered cookie decoded to %v", sess.Values)
	}
	env.server.decoded.put("with-flash", map[any]any{sessUser: "alice", "_flash": []any{"hello"}})
	if _, kept := env.server.decoded.get("with-flash"); kept {
		t.Error("a session with flashes is kept")
	}
}
