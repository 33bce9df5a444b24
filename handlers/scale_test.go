package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// TestScaleListing: at the scale of BenchmarkScale, the pages, searches
// and selections hold the right images, as told by the seed itself: page
// 250 of the table (20 a page) and page 37 of the API (100 a page) are
// those slices of all images in the table's order, the live search for
// "team 7" and the API's search for "number 99" find the images whose
// name or description contains it, and a user's and a group's selections
// are the ready images open to their groups.
func TestScaleListing(t *testing.T) {
	env := newScaleEnv(t)
	all := make([]scaleImage, scaleImages)
	for i := range all {
		all[i] = scaleImageOf(i + 1)
	}
	// The table's order: display name, then name (both the name here).
	slices.SortFunc(all, func(a, b scaleImage) int { return strings.Compare(a.name, b.name) })
	where := func(keep func(scaleImage) bool) []string {
		var out []string
		for _, img := range all {
			if keep(img) {
				out = append(out, img.name)
			}
		}
		return out
	}
	containing := func(q string) []string {
		return where(func(img scaleImage) bool {
			return strings.Contains(img.name, q) || strings.Contains(strings.ToLower(img.description), q)
		})
	}
	openTo := func(groups ...int) []string {
		return where(func(img scaleImage) bool {
			return img.url != "" && (img.owner == 0 && img.global || slices.ContainsFunc(img.grants, func(g int) bool { return slices.Contains(groups, g) }))
		})
	}
	everything := where(func(scaleImage) bool { return true })

	for _, tc := range []struct {
		route scaleRoute
		want  []string
		total int
	}{
		{scaleRoute{path: "/api/v1/images?perPage=100&page=37", as: adminToken}, everything[3600:3700], scaleImages},
		{scaleRoute{path: "/api/v1/images?q=number+99&perPage=100", as: adminToken}, containing("number 99")[:100], 111},
		{scaleRoute{path: "/api/v1/images?q=number+99&perPage=100&page=2", as: adminToken}, containing("number 99")[100:], 111},
		{scaleRoute{path: "/api/v1/me/images", as: userToken}, openTo(1, 2, 3, 4, 5), len(openTo(1, 2, 3, 4, 5))},
		{scaleRoute{path: "/api/v1/groups/team-3/selection", as: userToken}, openTo(3), len(openTo(3))},
	} {
		var list struct {
			Items []struct{ Name string }
			Total int
		}
		if err := json.Unmarshal(env.get(t, tc.route), &list); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range list.Items {
			got = append(got, it.Name)
		}
		if !slices.Equal(got, tc.want) || list.Total != tc.total {
			t.Errorf("%s: %d items (total %d), want %d (total %d); first %v, want %v",
				tc.route.path, len(got), list.Total, len(tc.want), tc.total, got[:min(3, len(got))], tc.want[:min(3, len(tc.want))])
		}
	}

	teamSeven := containing("team 7")
	for _, tc := range []struct {
		route  scaleRoute
		want   []string
		counts string
	}{
		{scaleRoute{path: "/admin/images?page=250", as: adminSession}, everything[4980:5000], "4981–5000 of 10000"},
		{scaleRoute{path: "/admin/images?q=team+7", as: adminSession, htmx: true}, teamSeven[:20], "1–20 of 495"},
	} {
		doc := parseHTML(t, string(env.get(t, tc.route)))
		var got []string
		doc.Find("tr[data-name]").Each(func(_ int, row *goquery.Selection) { got = append(got, row.AttrOr("data-name", "")) })
		if !slices.Equal(got, tc.want) || !strings.Contains(doc.Find(".pager").Text(), tc.counts) {
			t.Errorf("%s: rows %v, pager %q; want %v, %q", tc.route.path, got, doc.Find(".pager").Text(), tc.want, tc.counts)
		}
	}
	if len(teamSeven) != 495 {
		t.Errorf("the seed has %d images of team 7, 70 … 79, want 495", len(teamSeven))
	}
}

// get makes a request of the route and returns the answer's body; any
// status but 200 fails the test.
func (env *scaleEnv) get(t *testing.T, r scaleRoute) []byte {
	t.Helper()
	req, err := env.request(r)()
	if err != nil {
		t.Fatal(err)
	}
	res, err := env.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", r.path, res.StatusCode, err)
	}
	return body
}
