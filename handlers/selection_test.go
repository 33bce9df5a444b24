package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"imagehub/store"
)

// catalogue is a generated world and, kept apart from the store, the facts
// from which the test computes on its own who may use what.
type catalogue struct {
	groups  []string
	users   []string
	members map[string]map[string]bool // user → groups
	images  []catImage
}

type catImage struct {
	name, displayName string
	owner             string // "system" or a group
	global, ready     bool
	grants            map[string]bool
	typ               store.ImageType
}

// usableBy is the rule of DESIGN.md, written independently of the SQL: a
// ready image that is a global system image, a system image granted to one
// of the user's groups, or one of the user's groups' own images.
func (c *catalogue) usableBy(user string, img catImage) bool {
	if !img.ready {
		return false
	}
	if img.owner != store.OwnerSystem {
		return c.members[user][img.owner]
	}
	if img.global {
		return true
	}
	for g := range c.members[user] {
		if img.grants[g] {
			return true
		}
	}
	return false
}

// openTo is the same rule for one group (the launcher's selection).
func (c *catalogue) openTo(group string, img catImage) bool {
	if !img.ready {
		return false
	}
	if img.owner != store.OwnerSystem {
		return img.owner == group
	}
	return img.global || img.grants[group]
}

// expected lists, in the selection's order (display name, then name), the
// images for which ok holds.
func (c *catalogue) expected(ok func(catImage) bool) []catImage {
	var out []catImage
	for _, img := range c.images {
		if ok(img) {
			out = append(out, img)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].displayName != out[j].displayName {
			return out[i].displayName < out[j].displayName
		}
		return out[i].name < out[j].name
	})
	return out
}

// generateCatalogue fills the store with groups, users with random
// memberships and roles, and images with random owners, grants, global flags
// and readiness; then it takes some members out again and deletes a group,
// so that what the store has to forget is tested too.
func generateCatalogue(t *testing.T, st *store.Store, seed uint64, nGroups, nUsers, nImages int) *catalogue {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c := &catalogue{members: map[string]map[string]bool{}}
	for i := 0; i < nGroups; i++ {
		g := fmt.Sprintf("group-%02d", i)
		must(st.CreateGroup(ctx, &store.Group{Name: g}))
		c.groups = append(c.groups, g)
	}
	for i := 0; i < nUsers; i++ {
		u := fmt.Sprintf("user-%02d", i)
		must(st.CreateUser(ctx, &store.User{Username: u, Password: testAdminPassword}))
		c.users = append(c.users, u)
		c.members[u] = map[string]bool{}
		for _, gi := range rng.Perm(nGroups)[:rng.IntN(5)] {
			role := store.RoleMember
			if rng.IntN(4) == 0 {
				role = store.RoleAdmin
			}
			must(st.SetMember(ctx, c.groups[gi], u, role))
			c.members[u][c.groups[gi]] = true
		}
	}
	words := []string{"jupyter", "pytorch", "tensorflow", "r-studio", "spark", "cuda", "base", "scipy"}
	types := []store.ImageType{store.TypeCPU, store.TypeGPU, store.TypeUniversal}
	for i := 0; i < nImages; i++ {
		img := &store.Image{
			DisplayName: words[rng.IntN(len(words))] + "-" + fmt.Sprint(rng.IntN(40)),
			Type:        types[rng.IntN(len(types))],
			Owner:       store.OwnerSystem,
		}
		if rng.IntN(10) < 3 {
			img.Owner = c.groups[rng.IntN(nGroups)]
		} else if rng.IntN(5) == 0 {
			img.Global = true
		} else {
			for _, gi := range rng.Perm(nGroups)[:rng.IntN(4)] {
				img.Groups = append(img.Groups, c.groups[gi])
			}
		}
		ready := rng.IntN(100) < 85
		if ready {
			img.URL = "registry.example.com/" + img.DisplayName + ":" + fmt.Sprint(i)
			if img.Type == store.TypeUniversal && rng.IntN(2) == 0 {
				img.UseGPUURL, img.URLForGPU = true, img.URL+"-gpu"
			}
		} else {
			img.Recipe = &store.Recipe{BaseImage: "registry.example.com/base:1", Pip: "numpy"}
		}
		must(st.CreateImage(ctx, img))
		ci := catImage{name: img.Name, displayName: img.DisplayName, owner: img.Owner, global: img.Global, ready: ready,
			grants: map[string]bool{}, typ: img.Type}
		for _, g := range img.Groups {
			ci.grants[g] = true
		}
		c.images = append(c.images, ci)
	}
	// Take some members out again.
	for i := 0; i < nUsers/5; i++ {
		u := c.users[rng.IntN(nUsers)]
		for g := range c.members[u] {
			must(st.RemoveMember(ctx, g, u))
			delete(c.members[u], g)
			break
		}
	}
	// Delete one group: its members, grants and own images go with it.
	gone := c.groups[nGroups-1]
	must(st.DeleteGroup(ctx, gone))
	c.groups = c.groups[:nGroups-1]
	for _, m := range c.members {
		delete(m, gone)
	}
	kept := c.images[:0]
	for _, img := range c.images {
		if img.owner != gone {
			delete(img.grants, gone)
			kept = append(kept, img)
		}
	}
	c.images = kept
	return c
}

func names(imgs []catImage) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = img.name
	}
	return out
}

// TestSelectionOnGeneratedCatalogue compares, for every user, the image
// selection the API answers (and the store's) with the test's own
// computation, on a catalogue of hundreds of images, 20 groups and 50 users;
// and every group's launcher selection likewise.
func TestSelectionOnGeneratedCatalogue(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	cat := generateCatalogue(t, env.store, 20260301, 20, 50, 400)
	var empty, total int
	for _, u := range cat.users {
		want := cat.expected(func(img catImage) bool { return cat.usableBy(u, img) })
		if len(want) == 0 {
			empty++
		}
		total += len(want)
		var got listBody[selectionItem]
		res := env.withToken(u, store.ScopeRead).json(http.MethodGet, "/api/v1/me/images", nil, &got)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET /api/v1/me/images: %d", u, res.StatusCode)
		}
		gotNames := make([]string, len(got.Items))
		for i, it := range got.Items {
			gotNames[i] = it.Name
			if it.System != (it.Owner == store.OwnerSystem) {
				t.Errorf("%s: %s has system=%v and owner %q", u, it.Name, it.System, it.Owner)
			}
		}
		if !slices.Equal(gotNames, names(want)) || got.Total != len(want) {
			t.Errorf("%s (groups %v): API selection differs from the rule:\n got  %v\n want %v", u, sortedKeys(cat.members[u]), gotNames, names(want))
			continue
		}
		for i, img := range want {
			if got.Items[i].System != (img.owner == store.OwnerSystem) || got.Items[i].Type != img.typ {
				t.Errorf("%s: %s: system=%v type=%s, want %v %s", u, img.name, got.Items[i].System, got.Items[i].Type, img.owner == store.OwnerSystem, img.typ)
			}
		}
		sel, err := env.store.Selection(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		storeNames := make([]string, len(sel))
		for i, img := range sel {
			storeNames[i] = img.Name
		}
		if !slices.Equal(storeNames, names(want)) {
			t.Errorf("%s: store.Selection differs from the rule", u)
		}
	}
	if empty == len(cat.users) || total < len(cat.users)*3 {
		t.Fatalf("a degenerate catalogue: %d of %d users see nothing, %d items in all", empty, len(cat.users), total)
	}
	admin := env.withToken("admin", store.ScopeRead)
	for _, g := range cat.groups {
		want := cat.expected(func(img catImage) bool { return cat.openTo(g, img) })
		var got listBody[selectionItem]
		if res := admin.json(http.MethodGet, "/api/v1/groups/"+g+"/selection", nil, &got); res.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET selection: %d", g, res.StatusCode)
		}
		gotNames := make([]string, len(got.Items))
		for i, it := range got.Items {
			gotNames[i] = it.Name
		}
		if !slices.Equal(gotNames, names(want)) {
			t.Errorf("group %s: launcher selection differs from the rule:\n got  %v\n want %v", g, gotNames, names(want))
		}
	}
	t.Logf("%d images, %d groups, %d users; %d selection items in all, %d users with none", len(cat.images), len(cat.groups), len(cat.users), total, empty)
}

// TestSelectionPageMatchesAPI checks the page against the API for a few
// users of a generated catalogue: the same images, System ones hinted.
func TestSelectionPageMatchesAPI(t *testing.T) {
	env := newTestEnv(t)
	cat := generateCatalogue(t, env.store, 7, 6, 6, 60)
	for _, u := range cat.users {
		want := cat.expected(func(img catImage) bool { return cat.usableBy(u, img) })
		doc, status := env.signIn(u).getPage("/images")
		if status != http.StatusOK {
			t.Fatalf("%s: /images: %d", u, status)
		}
		var got []string
		doc.Find("table.selection tbody tr[id]").Each(func(_ int, tr *goquery.Selection) {
			name := strings.TrimPrefix(tr.AttrOr("id", ""), "image-")
			got = append(got, name)
		})
		if !slices.Equal(got, names(want)) {
			t.Errorf("%s: page lists %v, want %v", u, got, names(want))
		}
		for _, img := range want {
			hint := doc.Find("#image-" + img.name + " .hint")
			if system := img.owner == store.OwnerSystem; system != (hint.Length() == 1) || (system && hint.AttrOr("title", "") != "System image") {
				t.Errorf("%s: %s (owner %s): hint %d", u, img.name, img.owner, hint.Length())
			}
			if typ := strings.TrimSpace(doc.Find("#image-" + img.name + " .badge").Text()); typ != typeWord(img.typ) {
				t.Errorf("%s: %s: type shown %q, want %q", u, img.name, typ, typeWord(img.typ))
			}
		}
	}
}

func typeWord(t store.ImageType) string {
	switch t {
	case store.TypeGPU:
		return "GPU"
	case store.TypeUniversal:
		return "Universal"
	}
	return "CPU"
}

// TestGroupSelectionShape checks the launcher's fields: the URL per
// hardware, the pull secret's name and the system flag.
func TestGroupSelectionShape(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	env.mustCreateGroup("team-b")
	env.mustCreateSecret("regcred")
	env.mustCreateImage(&store.Image{DisplayName: "a-cpu", Type: store.TypeCPU, URL: "r.example.com/cpu:1", Global: true, PullSecret: "regcred"})
	env.mustCreateImage(&store.Image{DisplayName: "b-gpu", Type: store.TypeGPU, URL: "r.example.com/gpu:1", Groups: []string{"team-a"}})
	env.mustCreateImage(&store.Image{DisplayName: "c-universal", Type: store.TypeUniversal, URL: "r.example.com/tf:1",
		UseGPUURL: true, URLForGPU: "r.example.com/tf:1-gpu", Owner: "team-a"})
	env.mustCreateImage(&store.Image{DisplayName: "d-universal-one-url", Type: store.TypeUniversal, URL: "r.example.com/one:1", Global: true})
	env.mustCreateImage(&store.Image{DisplayName: "e-other-group", Type: store.TypeCPU, URL: "r.example.com/b:1", Owner: "team-b"})
	env.mustCreateImage(&store.Image{DisplayName: "f-not-ready", Type: store.TypeCPU, Global: true, Recipe: &store.Recipe{BaseImage: "x"}})
	if err := env.store.SetMember(t.Context(), "team-a", "alice", store.RoleMember); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Items []map[string]any `json:"items"`
		Total int              `json:"total"`
	}
	res := env.withToken("alice", store.ScopeRead).json(http.MethodGet, "/api/v1/groups/team-a/selection", nil, &raw)
	if res.StatusCode != http.StatusOK || raw.Total != 4 {
		t.Fatalf("GET: %d %+v", res.StatusCode, raw)
	}
	want := []map[string]any{
		{"name": "a-cpu", "displayName": "a-cpu", "description": "", "type": "cpu", "url": "r.example.com/cpu:1", "pullSecret": "regcred", "system": true, "owner": "system"},
		{"name": "b-gpu", "displayName": "b-gpu", "description": "", "type": "gpu", "url": "r.example.com/gpu:1", "urlForGpu": "r.example.com/gpu:1", "pullSecret": "", "system": true, "owner": "system"},
		{"name": "c-universal", "displayName": "c-universal", "description": "", "type": "universal", "url": "r.example.com/tf:1", "urlForGpu": "r.example.com/tf:1-gpu", "pullSecret": "", "system": false, "owner": "team-a"},
		{"name": "d-universal-one-url", "displayName": "d-universal-one-url", "description": "", "type": "universal", "url": "r.example.com/one:1", "urlForGpu": "r.example.com/one:1", "pullSecret": "", "system": true, "owner": "system"},
	}
	for i, w := range want {
		if fmt.Sprint(raw.Items[i]) != fmt.Sprint(w) {
			t.Errorf("item %d:\n got  %v\n want %v", i, raw.Items[i], w)
		}
	}
	var e errorBody
	if res := env.withToken("admin", store.ScopeRead).json(http.MethodGet, "/api/v1/groups/nope/selection", nil, &e); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown group: %d", res.StatusCode)
	}
	if res := env.withToken("alice", store.ScopeRead).json(http.MethodGet, "/api/v1/groups/team-b/selection", nil, &e); res.StatusCode != http.StatusForbidden {
		t.Errorf("another group: %d", res.StatusCode)
	}
}

// TestLauncherDocExample checks that the example answer in docs/launcher.md
// is what the API really answers for the catalogue it describes.
func TestLauncherDocExample(t *testing.T) {
	raw, err := os.ReadFile("../docs/launcher.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "```json\n")
	end := strings.Index(doc[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("docs/launcher.md has no JSON example")
	}
	var want any
	if err := json.Unmarshal([]byte(doc[start+8:start+8+end]), &want); err != nil {
		t.Fatalf("the example is not JSON: %v", err)
	}
	env := newTestEnv(t)
	env.mustCreateGroup("data-science")
	env.mustCreateGroup("ml-platform")
	env.mustCreateSecret("imagehub-registry")
	env.mustCreateImage(&store.Image{DisplayName: "jupyter-base", Type: store.TypeCPU, URL: "docker.io/jupyter/base-notebook:2024-05-27",
		Description: "Minimal Jupyter notebook with Python 3.11.", Global: true})
	env.mustCreateImage(&store.Image{DisplayName: "pytorch-cuda", Type: store.TypeGPU, URL: "docker.io/pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",
		Description: "PyTorch 2.3 with CUDA 12.1 for GPU training.", Groups: []string{"data-science", "ml-platform"}})
	env.mustCreateImage(&store.Image{DisplayName: "r-studio", Type: store.TypeCPU, URL: "127.0.0.1:5000/imagehub/r-studio:3f2a9c41d0be",
		Description: "Team R image with tidyverse.", Owner: "data-science", PullSecret: "imagehub-registry"})
	env.mustCreateImage(&store.Image{DisplayName: "tensorflow", Type: store.TypeUniversal, URL: "docker.io/tensorflow/tensorflow:2.16.1",
		UseGPUURL: true, URLForGPU: "docker.io/tensorflow/tensorflow:2.16.1-gpu", Description: "TensorFlow 2.16, CPU and GPU variants.", Global: true})
	env.mustCreateImage(&store.Image{DisplayName: "only-ml", Type: store.TypeCPU, URL: "docker.io/library/python:3", Groups: []string{"ml-platform"}})
	var got any
	if res := env.withToken("admin", store.ScopeRead).json(http.MethodGet, "/api/v1/groups/data-science/selection", nil, &got); res.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", res.StatusCode)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		t.Errorf("docs/launcher.md's example differs from the API's answer:\n%s", g)
	}
}
