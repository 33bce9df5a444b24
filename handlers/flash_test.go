package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestFormPostsWithoutRedirectsKeepTheCookieSmall: a client that posts form
// after form without following the redirects gets a 303 for each change
// made, the changes are all there, the cookie stays within what a browser
// keeps, and the next page shows the newest notices.
func TestFormPostsWithoutRedirectsKeepTheCookieSmall(t *testing.T) {
	env := newTestEnv(t)
	admin := env.signIn("admin")
	name := func(i int) string { return fmt.Sprintf("team-%02d-%s", i, strings.Repeat("x", 50)) }
	for i := range 40 {
		res := admin.postForm("/admin/groups", url.Values{"name": {name(i)}, "displayName": {strings.Repeat("D", 100)}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("post %d: status %d, want 303", i+1, res.StatusCode)
		}
		if _, err := env.store.FindGroup(t.Context(), name(i)); err != nil {
			t.Fatalf("post %d: the group is not there: %v", i+1, err)
		}
		for _, ck := range res.Cookies() {
			if n := len(ck.String()); n >= 4096 {
				t.Fatalf("post %d: the cookie %s is %d bytes, want under 4096", i+1, ck.Name, n)
			}
		}
	}
	doc, _ := admin.getPage("/admin/groups")
	notices := doc.Find(".flash")
	if notices.Length() != maxFlashes {
		t.Errorf("%d notices shown, want the newest %d", notices.Length(), maxFlashes)
	}
	if last := notices.Last().Text(); !strings.Contains(last, name(39)) {
		t.Errorf("last notice %q, want the newest group's", last)
	}
	if doc, _ := admin.getPage("/admin/groups"); doc.Find(".flash").Length() != 0 {
		t.Error("the notices were shown twice")
	}
}

// TestBoundFlashes: the waiting notices keep the newest ones within
// maxFlashes and flashBudget; one longer than the budget is cut on a
// character boundary.
func TestBoundFlashes(t *testing.T) {
	many := make([]string, 10)
	for i := range many {
		many[i] = fmt.Sprintf("notice %d", i)
	}
	if got := boundFlashes(many); len(got) != maxFlashes || got[len(got)-1] != "notice 9" {
		t.Errorf("ten short notices: kept %q, want the newest %d", got, maxFlashes)
	}
	half := strings.Repeat("h", flashBudget/2+1)
	if got := boundFlashes([]string{"old " + half, "new " + half}); len(got) != 1 || !strings.HasPrefix(got[0], "new") {
		t.Errorf("two notices over the budget together: kept %d, want the newest alone", len(got))
	}
	long := strings.Repeat("é", flashBudget) // two bytes each
	got := boundFlashes([]string{"old", long})
	if len(got) != 1 || len(got[0]) > flashBudget || !utf8.ValidString(got[0]) || !strings.HasSuffix(got[0], "…") {
		t.Errorf("a notice over the budget: kept %d of %d bytes (valid UTF-8: %v), want it cut to %d with …",
			len(got), len(got[0]), utf8.ValidString(got[0]), flashBudget)
	}
}
