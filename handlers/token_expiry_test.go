package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"imagehub/store"
)

// TestTokenExpiryAPI: a token made with "expiresAt" carries it in the
// answer and the list; one in the past or not a time is refused; without
// it the token never expires.
func TestTokenExpiryAPI(t *testing.T) {
	env := newTestEnv(t)
	alice := env.withToken("alice", store.ScopeAdmin)
	until := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	var created struct {
		ID        int64      `json:"id"`
		ExpiresAt *time.Time `json:"expiresAt"`
		Token     string     `json:"token"`
	}
	res := alice.json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "ci", "scope": "read", "expiresAt": until.Format(time.RFC3339)}, &created)
	if res.StatusCode != http.StatusCreated || created.ExpiresAt == nil || !created.ExpiresAt.Equal(until) {
		t.Fatalf("POST with expiresAt: %d %+v", res.StatusCode, created)
	}
	read := env.anonymous()
	read.bearer = created.Token
	if res := read.json(http.MethodGet, "/api/v1/me/images", nil, nil); res.StatusCode != http.StatusOK {
		t.Errorf("a token before its expiry: %d", res.StatusCode)
	}
	var list listBody[map[string]any]
	alice.json(http.MethodGet, "/api/v1/tokens", nil, &list)
	for _, it := range list.Items {
		if it["id"] == float64(created.ID) && it["expiresAt"] != until.Format("2006-01-02T15:04:05Z07:00") {
			t.Errorf("listed expiresAt = %v, want %s", it["expiresAt"], until.Format(time.RFC3339))
		}
		if it["id"] != float64(created.ID) && it["expiresAt"] != nil {
			t.Errorf("a token made without expiry lists expiresAt %v, want null", it["expiresAt"])
		}
	}
	for body, field := range map[string]string{
		`{"name": "x", "scope": "read", "expiresAt": "2001-01-01T00:00:00Z"}`: "in the future",
		`{"name": "x", "scope": "read", "expiresAt": "in 30 days"}`:           "a time",
	} {
		var e errorBody
		if res := alice.json(http.MethodPost, "/api/v1/tokens", body, &e); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(e.Fields["expiresAt"], field) {
			t.Errorf("%s: %d %+v", body, res.StatusCode, e)
		}
	}
}

// TestTokenExpiryForm makes a token on the page with an expiry in days: the
// list shows when it expires, and "never" for one without.
func TestTokenExpiryForm(t *testing.T) {
	env := newTestEnv(t)
	alice := env.signIn("alice")
	doc, _ := alice.getPage("/account/tokens")
	if doc.Find(`select[name=expires] option[value=""][selected]`).Length() != 1 || doc.Find(`select[name=expires] option[value="90"]`).Length() != 1 {
		t.Error("the form offers no expiry, or does not default to never")
	}
	res := alice.postForm("/account/tokens", url.Values{"name": {"ci"}, "scope": {"read"}, "expires": {"90"}})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", res.StatusCode)
	}
	res = alice.postForm("/account/tokens", url.Values{"name": {"forever"}, "scope": {"read"}, "expires": {""}})
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create without expiry: %d", res.StatusCode)
	}
	res = alice.postForm("/account/tokens", url.Values{"name": {"bad"}, "scope": {"read"}, "expires": {"-3"}})
	if doc := alice.readPage(res); res.StatusCode != http.StatusUnprocessableEntity || doc.Find("#expires-error").Text() == "" {
		t.Errorf("a negative expiry: %d", res.StatusCode)
	}
	toks, _ := env.store.ListTokens(t.Context(), "alice")
	if len(toks) != 2 || toks[0].ExpiresAt == nil || toks[1].ExpiresAt != nil {
		t.Fatalf("tokens: %+v", toks)
	}
	if d := time.Until(*toks[0].ExpiresAt); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("the 90-day token expires in %v", d)
	}
	doc, _ = alice.getPage("/account/tokens")
	if got := rowText(doc.Find("#token-" + strconv.FormatInt(toks[0].ID, 10))); !strings.Contains(got, toks[0].ExpiresAt.UTC().Format("2006-01-02")) {
		t.Errorf("the 90-day token's row = %q, want its expiry date", got)
	}
	if got := rowText(doc.Find("#token-" + strconv.FormatInt(toks[1].ID, 10))); !strings.Contains(got, "never") {
		t.Errorf("the token without expiry: row = %q, want never", got)
	}
}

// TestPasswordChangeRevokesTokens: an administrator's reset and a user's
// own change (through the API) both revoke the user's tokens.
func TestPasswordChangeRevokesTokens(t *testing.T) {
	env := newTestEnv(t)
	aliceToken := env.withToken("alice", store.ScopeRead)
	admin := env.signIn("admin")
	admin.getPage("/admin/users/alice")
	if res := admin.postForm("/admin/users/alice/password", url.Values{"password": {"a-new-password"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset: %d", res.StatusCode)
	}
	if res := aliceToken.json(http.MethodGet, "/api/v1/me/images", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("alice's token after the reset: %d, want 401", res.StatusCode)
	}
	own := env.withToken("admin", store.ScopeAdmin)
	other := env.withToken("admin", store.ScopeRead)
	if res := own.json(http.MethodPatch, "/api/v1/users/admin", map[string]string{"password": "another-password"}, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("own change: %d", res.StatusCode)
	}
	if res := other.json(http.MethodGet, "/api/v1/me/images", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("admin's other token after their own change: %d, want 401", res.StatusCode)
	}
}
