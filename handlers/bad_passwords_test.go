package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// reasonLongPassword is what every setter of a password says of one over
// bcrypt's 72 bytes.
const reasonLongPassword = "At most 72 bytes: bcrypt ignores the rest."

// TestLongPasswordsAreRefusedEverywhere sets passwords over 72 bytes on
// every path that sets one (the users page's add and reset forms, the API's
// create and patch): each is refused at "password" with the reason, and
// nothing changes. A password of exactly 72 bytes is then accepted.
func TestLongPasswordsAreRefusedEverywhere(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	api := func(method, path string, body map[string]any) func(string) (int, string) {
		return func(pw string) (int, string) {
			b := map[string]any{"password": pw}
			for k, v := range body {
				b[k] = v
			}
			var e errorBody
			res := admin.json(method, path, b, &e)
			return res.StatusCode, e.Fields["password"]
		}
	}
	form := func(path string, fields url.Values) func(string) (int, string) {
		return func(pw string) (int, string) {
			f := url.Values{"password": {pw}}
			for k, v := range fields {
				f[k] = v
			}
			res := admin.postForm(path, f)
			return res.StatusCode, strings.TrimSpace(admin.readPage(res).Find("#password-error").Text())
		}
	}
	setters := []struct {
		name string
		set  func(password string) (status int, reason string)
		ok   int
	}{
		{"API create", api("POST", "/api/v1/users", map[string]any{"username": "bob"}), http.StatusCreated},
		{"API patch", api("PATCH", "/api/v1/users/alice", nil), http.StatusOK},
		{"API patch with admin", api("PATCH", "/api/v1/users/alice", map[string]any{"admin": true}), http.StatusOK},
		{"form add", form("/admin/users", url.Values{"username": {"carol"}}), http.StatusSeeOther},
		{"form reset", form("/admin/users/alice/password", nil), http.StatusSeeOther},
	}
	long := []string{
		strings.Repeat("a", 73),
		strings.Repeat("é", 37), // 37 characters, 74 bytes
		strings.Repeat("é", 36) + "a",
		testAdminPassword + strings.Repeat("!", 100),
	}
	for _, s := range setters {
		t.Run(s.name, func(t *testing.T) {
			for _, pw := range long {
				env.assertUnchanged(t, func() {
					if status, reason := s.set(pw); status != http.StatusUnprocessableEntity || reason != reasonLongPassword {
						t.Errorf("%d bytes: %d %q, want 422 %q", len(pw), status, reason, reasonLongPassword)
					}
				})
			}
			if status, reason := s.set(strings.Repeat("é", 36)); status != s.ok {
				t.Errorf("72 bytes: %d %q, want %d", status, reason, s.ok)
			}
		})
	}
}

// TestSignInReadsTheWholePassword: bcrypt compares 72 bytes, so a user
// whose password is 72 bytes long must not sign in with it and any ending
// added: every such attempt is a failed sign-in (401) that changes nothing.
func TestSignInReadsTheWholePassword(t *testing.T) {
	env := newTestEnv(t)
	pw := strings.Repeat("p", 36) + strings.Repeat("ß", 18) // 72 bytes
	if err := env.store.SetPassword(t.Context(), "alice", pw); err != nil {
		t.Fatal(err)
	}
	c := env.anonymous()
	c.getPage("/login")
	for _, wrong := range []string{pw + "x", pw + pw, pw + "ß"} {
		env.assertUnchanged(t, func() {
			res := c.postForm("/login", url.Values{"username": {"alice"}, "password": {wrong}})
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("the password and %d bytes more: %d, want 401", len(wrong)-len(pw), res.StatusCode)
			}
			c.readPage(res)
		})
	}
	if res := c.postForm("/login", url.Values{"username": {"alice"}, "password": {pw}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the 72-byte password: %d, want 303", res.StatusCode)
	}
}
