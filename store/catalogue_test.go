package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func names(imgs []*Image) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = img.Name
	}
	return out
}

// likeSearch is the search as it was before the catalogue: a LIKE of the
// lowered name, display name and description against the lowered query,
// with LIKE's wildcards escaped. The catalogue must find the same images.
func likeSearch(t *testing.T, s *Store, query string) []string {
	t.Helper()
	like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(strings.TrimSpace(query))) + "%"
	rows, err := s.db.Query(`SELECT name FROM images WHERE lower(name) LIKE ? ESCAPE '\'
		OR lower(display_name) LIKE ? ESCAPE '\' OR lower(description) LIKE ? ESCAPE '\' ORDER BY display_name, name`, like, like, like)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestSearchMatchesLike: the catalogue's search finds what the LIKE
// search found, for queries of every length, in any case, with spaces
// around, with LIKE's wildcards and escape, and with letters beyond ASCII
// (which SQLite's lower() and LIKE do not fold).
func TestSearchMatchesLike(t *testing.T) {
	s, _ := openInternal(t)
	ctx := context.Background()
	descriptions := []string{
		"Team 7's notebook", "STEAM 70 and more", "team 77", "100% pure", "a_b and a-b", `back\slash`,
		"Ünïcode Éclair", "éclair", "café CAFÉ", "number 99 of team 9", "number 990", "Number 1099",
		"ab", "", "line one\nline two", "tab\there",
	}
	for i, d := range descriptions {
		img := &Image{DisplayName: fmt.Sprintf("image-%02d", len(descriptions)-i), Description: d, Type: TypeCPU, URL: "r/x", Global: true}
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	queries := []string{
		"team 7", "TEAM 7", "  team 7  ", "eam", "7", "", " ", "%", "_", "a_b", `\`, `back\s`, "100%",
		"é", "É", "éclair", "ÉCLAIR", "ünï", "café", "CAFÉ", "number 99", "number 9", "99",
		"image-0", "IMAGE-1", "e two", "\n", "b\ta", "no such text", "ab", "a",
	}
	for _, q := range queries {
		imgs, total, err := s.ListImages(ctx, ImageFilter{Query: q})
		if err != nil {
			t.Fatal(err)
		}
		want := likeSearch(t, s, q)
		if got := names(imgs); !slices.Equal(got, want) || total != len(want) {
			t.Errorf("search %q: %v (total %d), the LIKE search: %v", q, got, total, want)
		}
	}
}

// TestListImagesPages: the pages of a listing are the slices of the whole
// list in the table's order (display name, then name), whatever order the
// images were added in; a page past the end is empty and still tells the
// total; the filters by owner and type apply before the paging.
func TestListImagesPages(t *testing.T) {
	s, _ := openInternal(t)
	ctx := context.Background()
	if err := s.CreateGroup(ctx, &Group{Name: "team"}); err != nil {
		t.Fatal(err)
	}
	var all, owned, gpu []string
	for _, i := range []int{7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6} {
		img := &Image{DisplayName: fmt.Sprintf("img-%02d", i), Type: TypeCPU, URL: "r/x", Global: true}
		if i%3 == 0 {
			img.Owner, img.Global = "team", false
		}
		if i%2 == 0 {
			img.Type = TypeGPU
		}
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		n := fmt.Sprintf("img-%02d", i)
		all = append(all, n)
		if i%3 == 0 {
			owned = append(owned, n)
		}
		if i%2 == 0 {
			gpu = append(gpu, n)
		}
	}
	for _, tc := range []struct {
		f    ImageFilter
		want []string
	}{
		{ImageFilter{}, all},
		{ImageFilter{Owner: "team"}, owned},
		{ImageFilter{Owner: OwnerSystem, Type: TypeGPU}, []string{"img-02", "img-04", "img-08", "img-10"}},
		{ImageFilter{Type: TypeGPU}, gpu},
		{ImageFilter{Owner: "no-such-group"}, nil},
	} {
		for _, limit := range []int{1, 5, 12} {
			var got []string
			for offset := 0; offset < len(tc.want)+limit; offset += limit {
				f := tc.f
				f.Offset, f.Limit = offset, limit
				imgs, total, err := s.ListImages(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if total != len(tc.want) {
					t.Errorf("%+v: total %d, want %d", f, total, len(tc.want))
				}
				if offset >= len(tc.want) && len(imgs) > 0 {
					t.Errorf("%+v: a page past the end holds %v", f, names(imgs))
				}
				got = append(got, names(imgs)...)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%+v by pages of %d: %v, want %v", tc.f, limit, got, tc.want)
			}
		}
	}
}

// TestCatalogueFollowsEveryWriter: the listings and selections show each
// change as soon as it is committed, whether this store made it or
// another process did (another Store on the same file, or plain SQL):
// new, changed and deleted images, grants, group renames and deletions,
// new groups.
func TestCatalogueFollowsEveryWriter(t *testing.T) {
	s, path := openInternal(t)
	other, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	search := func(q string) []string {
		t.Helper()
		imgs, _, err := s.ListImages(ctx, ImageFilter{Query: q})
		if err != nil {
			t.Fatal(err)
		}
		return names(imgs)
	}
	selection := func(group string) []string {
		t.Helper()
		imgs, err := s.GroupSelection(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		return names(imgs)
	}
	for _, g := range []string{"blue", "red"} {
		if err := s.CreateGroup(ctx, &Group{Name: g}); err != nil {
			t.Fatal(err)
		}
	}
	if got := search("alpha"); len(got) != 0 {
		t.Fatalf("before: %v", got)
	}
	img := &Image{DisplayName: "alpha", Description: "first", Type: TypeCPU, URL: "r/a", Groups: []string{"blue"}}
	if err := other.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if got := search("alpha"); !slices.Equal(got, []string{"alpha"}) {
		t.Errorf("an image added by another store: %v", got)
	}
	if got := selection("blue"); !slices.Equal(got, []string{"alpha"}) {
		t.Errorf("blue's selection: %v", got)
	}
	img.Description, img.Groups = "second", []string{"red"}
	if err := other.UpdateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if got, old := search("second"), search("first"); !slices.Equal(got, []string{"alpha"}) || len(old) != 0 {
		t.Errorf("after an edit by another store: second %v, first %v", got, old)
	}
	if blue, red := selection("blue"), selection("red"); len(blue) != 0 || !slices.Equal(red, []string{"alpha"}) {
		t.Errorf("after granting red instead of blue: blue %v, red %v", blue, red)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := other.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE images SET url = '' WHERE name = 'alpha'`)
	if got := selection("red"); len(got) != 0 {
		t.Errorf("an image made not ready with SQL is still selected: %v", got)
	}
	exec(`UPDATE groups SET name = 'crimson' WHERE name = 'red'`)
	imgs, _, err := s.ListImages(ctx, ImageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || !slices.Equal(imgs[0].Groups, []string{"crimson"}) {
		t.Errorf("after renaming red with SQL: %+v", imgs[0])
	}
	exec(`INSERT INTO groups (name, created_at) VALUES ('green', '2026-01-01T00:00:00.000000Z')`)
	if groups, err := s.GroupNames(ctx); err != nil || !slices.Equal(groups, []string{"blue", "crimson", "green"}) {
		t.Errorf("group names: %v, %v", groups, err)
	}
	exec(`INSERT INTO image_groups (image_id, group_id) SELECT i.id, g.id FROM images i, groups g WHERE i.name = 'alpha' AND g.name = 'green'`)
	if imgs, _, err = s.ListImages(ctx, ImageFilter{}); err != nil || !slices.Equal(imgs[0].Groups, []string{"crimson", "green"}) {
		t.Errorf("after a grant with SQL: %+v, %v", imgs[0], err)
	}
	if err := other.CreateImage(ctx, &Image{DisplayName: "solo", Type: TypeCPU, URL: "r/s", Global: true}); err != nil {
		t.Fatal(err)
	}
	if got := search("solo"); !slices.Equal(got, []string{"solo"}) {
		t.Errorf("a global image: %v", got)
	}
	exec(`DELETE FROM images WHERE name = 'solo'`)
	if got := search("solo"); len(got) != 0 {
		t.Errorf("an image deleted with SQL is still listed: %v", got)
	}
	if err := other.CreateGroup(ctx, &Group{Name: "owner"}); err != nil {
		t.Fatal(err)
	}
	own := &Image{DisplayName: "owned", Type: TypeCPU, URL: "r/o", Owner: "owner"}
	if err := other.CreateImage(ctx, own); err != nil {
		t.Fatal(err)
	}
	if got := search("owned"); !slices.Equal(got, []string{"owned"}) {
		t.Errorf("a group's own image: %v", got)
	}
	if err := other.DeleteGroup(ctx, "owner"); err != nil {
		t.Fatal(err)
	}
	if got := search("owned"); len(got) != 0 {
		t.Errorf("the own image of a deleted group is still listed: %v", got)
	}
	if err := other.DeleteImage(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if got := search(""); len(got) != 0 {
		t.Errorf("after deleting every image: %v", got)
	}
}

// TestListedImagesAreCopies: changing an image a listing returned changes
// nothing the next listing returns.
func TestListedImagesAreCopies(t *testing.T) {
	s, _ := openInternal(t)
	ctx := context.Background()
	if err := s.CreateGroup(ctx, &Group{Name: "blue"}); err != nil {
		t.Fatal(err)
	}
	r := Recipe{BaseImage: "r/base:1"}
	if err := s.CreateImage(ctx, &Image{DisplayName: "alpha", Type: TypeCPU, URL: "r/a", Groups: []string{"blue"}, Recipe: &r}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		imgs, _, err := s.ListImages(ctx, ImageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if img := imgs[0]; img.DisplayName != "alpha" || img.Groups[0] != "blue" || img.Recipe.BaseImage != "r/base:1" {
			t.Fatalf("listed: %+v", img)
		}
		imgs[0].DisplayName, imgs[0].Groups[0], imgs[0].Recipe.BaseImage = "changed", "changed", "changed"
	}
}

// TestCatalogueUnderConcurrentWrites: listings made while images are added
// never fail nor show a half-loaded catalogue (each total is a count the
// table had), and the last listing shows every image.
func TestCatalogueUnderConcurrentWrites(t *testing.T) {
	s, _ := openInternal(t)
	ctx := context.Background()
	const n = 40
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := s.CreateImage(ctx, &Image{DisplayName: fmt.Sprintf("img-%02d", i), Type: TypeCPU, URL: "r/x", Global: true}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			last := 0
			for last < n {
				imgs, total, err := s.ListImages(ctx, ImageFilter{Query: "img", Limit: 5})
				if err == nil && (total < last || len(imgs) != min(total, 5)) {
					err = fmt.Errorf("listed %d of %d after %d", len(imgs), total, last)
				}
				if err != nil {
					errs <- err
					return
				}
				last = total
			}
			errs <- nil
		}()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
