package handlers

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"imagehub/store"
)

// TestSelectionAnswersFollowChanges: the selection routes keep their
// answers (selectionAnswers), and never answer one that is out of date: a
// new image, an edit, a grant, a change of the user's groups and a rename
// of a group each show in the next answer, for the user's selection and
// for a group's; an unknown group stays a 404; ?pretty answers the same
// list.
func TestSelectionAnswersFollowChanges(t *testing.T) {
	env := newTestEnv(t)
	ctx := t.Context()
	env.mustCreateGroup("team-a")
	env.mustCreateGroup("team-b")
	if err := env.store.SetMember(ctx, "team-a", "alice", store.RoleMember); err != nil {
		t.Fatal(err)
	}
	alice := env.withToken("alice", store.ScopeRead)
	selection := func(path string) string {
		t.Helper()
		var got listBody[selectionItem]
		if res := alice.json(http.MethodGet, path, nil, &got); res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		var out []string
		for _, it := range got.Items {
			out = append(out, it.Name+":"+it.Description+":"+it.Owner)
		}
		if len(out) != got.Total {
			t.Errorf("GET %s: %d items, total %d", path, len(out), got.Total)
		}
		return strings.Join(out, " ")
	}
	check := func(step, wantMine, wantTeamA string) {
		t.Helper()
		for range 2 { // made, then kept
			if got := selection("/api/v1/me/images"); got != wantMine {
				t.Errorf("%s: alice's selection %q, want %q", step, got, wantMine)
			}
			if got := selection("/api/v1/groups/team-a/selection"); got != wantTeamA {
				t.Errorf("%s: team-a's selection %q, want %q", step, got, wantTeamA)
			}
		}
	}
	env.mustCreateImage(&store.Image{DisplayName: "global", URL: "r/g", Global: true})
	check("a global image", "global::system", "global::system")

	own := env.mustCreateImage(&store.Image{DisplayName: "own", URL: "r/o", Owner: "team-a"})
	check("an own image of team-a", "global::system own::team-a", "global::system own::team-a")

	own.Description = "edited"
	if err := env.store.UpdateImage(ctx, own); err != nil {
		t.Fatal(err)
	}
	check("an edit", "global::system own:edited:team-a", "global::system own:edited:team-a")

	granted := env.mustCreateImage(&store.Image{DisplayName: "granted", URL: "r/x", Groups: []string{"team-b"}})
	check("an image of team-b", "global::system own:edited:team-a", "global::system own:edited:team-a")
	granted.Groups = []string{"team-a", "team-b"}
	if err := env.store.UpdateImage(ctx, granted); err != nil {
		t.Fatal(err)
	}
	check("a grant to team-a", "global::system granted::system own:edited:team-a", "global::system granted::system own:edited:team-a")

	env.mustCreateImage(&store.Image{DisplayName: "b-own", URL: "r/b", Owner: "team-b"})
	if err := env.store.SetMember(ctx, "team-b", "alice", store.RoleMember); err != nil {
		t.Fatal(err)
	}
	check("alice joins team-b", "b-own::team-b global::system granted::system own:edited:team-a",
		"global::system granted::system own:edited:team-a")
	if err := env.store.RemoveMember(ctx, "team-a", "alice"); err != nil {
		t.Fatal(err)
	}
	if got, want := selection("/api/v1/me/images"), "b-own::team-b global::system granted::system"; got != want {
		t.Errorf("alice leaves team-a: %q, want %q", got, want)
	}
	if err := env.store.RenameGroup(ctx, "team-b", &store.Group{Name: "team-c"}); err != nil {
		t.Fatal(err)
	}
	if got, want := selection("/api/v1/me/images"), "b-own::team-c global::system granted::system"; got != want {
		t.Errorf("team-b renamed team-c: %q, want %q", got, want)
	}

	admin := env.withToken("admin", store.ScopeRead)
	if res := admin.json(http.MethodGet, "/api/v1/groups/nope/selection", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown group: %d, want 404", res.StatusCode)
	}
	compact := readAll(t, admin.get("/api/v1/groups/team-a/selection").Body)
	res := admin.get("/api/v1/groups/team-a/selection?pretty")
	if pretty := readAll(t, res.Body); strings.Join(strings.Fields(pretty), "") != strings.Join(strings.Fields(compact), "") || !strings.Contains(pretty, "\n  ") {
		t.Errorf("?pretty: %q, the answer: %q", pretty, compact)
	}
	if res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", res.Header.Get("Content-Type"))
	}
}

// TestSelectionAnswersBounded: the kept answers never hold more than
// maxSelectionAnswers bytes, and those of an older catalogue are not kept.
func TestSelectionAnswersBounded(t *testing.T) {
	var a selectionAnswers
	body := []byte(strings.Repeat("x", maxSelectionAnswers/3))
	for i, key := range []string{"a", "b", "c", "d"} {
		a.put(7, key, body)
		if a.size > maxSelectionAnswers || len(a.bodies) > 3 {
			t.Fatalf("after %d answers: %d bytes in %d", i+1, a.size, len(a.bodies))
		}
	}
	if _, ok := a.get(7, "d"); !ok {
		t.Error("the last answer is not kept")
	}
	a.put(6, "old", body)
	if _, ok := a.get(6, "old"); ok {
		t.Error("an answer of an older catalogue is kept")
	}
	a.put(8, "new", body)
	if _, ok := a.get(7, "d"); ok {
		t.Error("an answer of version 7 is answered at version 8")
	}
	if got, ok := a.get(8, "new"); !ok || !slices.Equal(got, body) {
		t.Error("the answer of version 8 is not kept")
	}
	if _, ok := a.get(8, "big"); ok {
		t.Error("an answer never put is found")
	}
	a.put(8, "big", make([]byte, maxSelectionAnswers+1))
	if _, ok := a.get(8, "big"); ok || a.size > maxSelectionAnswers {
		t.Errorf("an answer larger than the bound is kept (%d bytes kept)", a.size)
	}
}
