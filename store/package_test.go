package store_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"imagehub/store"
)

// digestN is a well-formed digest, a different one for each n.
func digestN(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// customImage makes a custom image and returns a function that runs one
// build of it to success with a package list (nil: none) and a digest.
func customImage(t *testing.T, s *store.Store, name string) func(pkgs []store.Package, digest string) int64 {
	t.Helper()
	ctx := context.Background()
	r := store.Recipe{BaseImage: "r/base:1", Apt: "jq"}
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: name, Type: store.TypeCPU, Global: true, Recipe: &r}))
	n := 0
	return func(pkgs []store.Package, digest string) int64 {
		t.Helper()
		n++
		b, err := s.CreateBuild(ctx, name, r, fmt.Sprintf("reg/imagehub/%s:t%d", name, n))
		mustNoErr(t, err)
		mustNoErr(t, s.StartBuild(ctx, b.ID))
		mustNoErr(t, s.SucceedBuild(ctx, b.ID, digest, pkgs))
		return b.ID
	}
}

func apt(name, version string) store.Package {
	return store.Package{Manager: store.ManagerApt, Name: name, Version: version}
}

func pip(name, version string) store.Package {
	return store.Package{Manager: store.ManagerPip, Name: name, Version: version}
}

// TestPackageListFilters stores a list with a build's success and reads it
// back a page at a time, by name and by manager, with the counts of each
// manager.
func TestPackageListFilters(t *testing.T) {
	s, ctx := open(t), context.Background()
	build := customImage(t, s, "sci")
	list := []store.Package{
		apt("jq", "1.6-2.1+deb12u1"), apt("libjq1", "1.6-2.1+deb12u1"), apt("bash", "5.2.15-2+b2"),
		pip("PyYAML", "6.0.1"), pip("jq_like", "1"), {Manager: store.ManagerConda, Name: "numpy", Version: "1.26.4"},
	}
	id := build(list, digestN(1))
	b, err := s.FindBuild(ctx, id)
	mustNoErr(t, err)
	if b.Status != store.BuildSucceeded || b.PackageCount == nil || *b.PackageCount != len(list) {
		t.Fatalf("build after SucceedBuild: %s with %v packages, want succeeded with %d", b.Status, b.PackageCount, len(list))
	}
	names := func(ps []store.Package) []string {
		var out []string
		for _, p := range ps {
			out = append(out, string(p.Manager)+":"+p.Name)
		}
		return out
	}
	for _, c := range []struct {
		f         store.PackageFilter
		want      []string
		wantTotal int
	}{
		{store.PackageFilter{}, []string{"apt:bash", "apt:jq", "apt:libjq1", "conda:numpy", "pip:PyYAML", "pip:jq_like"}, 6},
		{store.PackageFilter{Query: "JQ"}, []string{"apt:jq", "apt:libjq1", "pip:jq_like"}, 3},
		{store.PackageFilter{Query: "jq", Manager: store.ManagerApt}, []string{"apt:jq", "apt:libjq1"}, 2},
		{store.PackageFilter{Query: "yaml"}, []string{"pip:PyYAML"}, 1},
		// % and _ are letters, not patterns.
		{store.PackageFilter{Query: "q_"}, []string{"pip:jq_like"}, 1},
		{store.PackageFilter{Query: "%"}, nil, 0},
		{store.PackageFilter{Limit: 2, Offset: 2}, []string{"apt:libjq1", "conda:numpy"}, 6},
		{store.PackageFilter{Manager: store.ManagerConda}, []string{"conda:numpy"}, 1},
	} {
		page, err := s.ListPackages(ctx, id, c.f)
		mustNoErr(t, err)
		if got := names(page.Items); !slices.Equal(got, c.want) || page.Total != c.wantTotal {
			t.Errorf("%+v: %v (total %d), want %v (total %d)", c.f, got, page.Total, c.want, c.wantTotal)
		}
		if want := map[store.PackageManager]int{"apt": 3, "pip": 2, "conda": 1}; !reflect.DeepEqual(page.Counts, want) {
			t.Errorf("%+v: counts %v, want %v", c.f, page.Counts, want)
		}
	}
	if _, err := s.ListPackages(ctx, id, store.PackageFilter{Manager: "npm"}); store.ErrorFields(err)["manager"] == "" {
		t.Errorf("an unknown manager: %v, want a reason at manager", err)
	}
	if _, err := s.ListPackages(ctx, 9999, store.PackageFilter{}); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("an unknown build: %v, want ENOTFOUND", err)
	}

	// A failed build has no list; an empty list is a list.
	r := store.Recipe{BaseImage: "r/base:1", Apt: "jq"}
	failed, err := s.CreateBuild(ctx, "sci", r, "reg/imagehub/sci:f")
	mustNoErr(t, err)
	mustNoErr(t, s.FinishBuild(ctx, failed.ID, store.BuildFailed, "", "no"))
	if _, err := s.ListPackages(ctx, failed.ID, store.PackageFilter{}); store.ErrorCode(err) != store.ENOTFOUND || !strings.Contains(err.Error(), "not succeeded") {
		t.Errorf("a failed build's packages: %v, want ENOTFOUND saying it has not succeeded", err)
	}
	empty := build([]store.Package{}, digestN(2))
	if page, err := s.ListPackages(ctx, empty, store.PackageFilter{}); err != nil || page.Total != 0 || page.Items == nil {
		t.Errorf("an empty list: %+v, %v; want no items and no error", page, err)
	}
}

// TestUpToDateBuildCopiesTheList: a build that pushed nothing new (no list
// of its own, the digest of an earlier build) gets that build's list; a
// build with a new digest and no list has none.
func TestUpToDateBuildCopiesTheList(t *testing.T) {
	s, ctx := open(t), context.Background()
	build := customImage(t, s, "sci")
	first := build([]store.Package{apt("jq", "1.6"), apt("hello", "2.10")}, digestN(1))
	same := build(nil, digestN(1))
	page, err := s.ListPackages(ctx, same, store.PackageFilter{})
	mustNoErr(t, err)
	want, _ := s.ListPackages(ctx, first, store.PackageFilter{})
	if !reflect.DeepEqual(page.Items, want.Items) {
		t.Errorf("the up-to-date build's list: %v, want the first build's %v", page.Items, want.Items)
	}
	other := build(nil, digestN(3))
	if _, err := s.ListPackages(ctx, other, store.PackageFilter{}); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("a build without a list and a new digest: %v, want ENOTFOUND", err)
	}
}

// TestSucceedBuildRefusesBadLists: a list with a bad package, a package
// twice or too many packages is refused, and the build stays running.
func TestSucceedBuildRefusesBadLists(t *testing.T) {
	s, ctx := open(t), context.Background()
	r := store.Recipe{BaseImage: "r/base:1"}
	mustNoErr(t, s.CreateImage(ctx, &store.Image{DisplayName: "sci", Type: store.TypeCPU, Global: true, Recipe: &r}))
	b, err := s.CreateBuild(ctx, "sci", r, "reg/imagehub/sci:t")
	mustNoErr(t, err)
	mustNoErr(t, s.StartBuild(ctx, b.ID))
	tooMany := make([]store.Package, store.MaxPackages+1)
	for i := range tooMany {
		tooMany[i] = apt(fmt.Sprintf("p%d", i), "1")
	}
	for name, list := range map[string][]store.Package{
		"bad version":   {apt("jq", "1.6\x00")},
		"twice":         {apt("jq", "1.6"), apt("jq", "1.7")},
		"too many":      tooMany,
		"bad manager":   {{Manager: "npm", Name: "left-pad", Version: "1"}},
		"invalid UTF-8": {apt("j\xffq", "1")},
	} {
		if err := s.SucceedBuild(ctx, b.ID, digestN(1), list); store.ErrorCode(err) != store.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if got, _ := s.FindBuild(ctx, b.ID); got.Status != store.BuildRunning {
		t.Errorf("after refused lists the build is %s, want running", got.Status)
	}
}

// TestPackageValidate holds the rule for what an image may claim to hold.
func TestPackageValidate(t *testing.T) {
	long := strings.Repeat("a", store.MaxPackageFieldLen)
	for _, c := range []struct {
		p     store.Package
		field string // "" when valid
	}{
		{apt("jq", "1.6-2.1+deb12u1"), ""},
		{apt(long, long), ""},
		{apt("naïve", "1:2.0~rc1"), ""},
		{apt(long+"a", "1"), "name"},
		{apt("jq", long+"a"), "version"},
		{apt("", "1"), "name"},
		{apt("jq", ""), "version"},
		{apt("j q", "1"), "name"},
		{apt("jq", "1\n2"), "version"},
		{apt("jq\u202e", "1"), "name"},
		{apt("\xc3\x28", "1"), "name"},
		{store.Package{Manager: "APT", Name: "jq", Version: "1"}, "manager"},
	} {
		err := c.p.Validate()
		if c.field == "" && err != nil {
			t.Errorf("%+q: %v, want valid", c.p, err)
		}
		if c.field != "" && store.ErrorFields(err)[c.field] == "" {
			t.Errorf("%+q: %v, want a reason at %s", c.p, err, c.field)
		}
	}
}

// TestCleanPackages keeps the valid packages, the first of each name, and
// at most MaxPackages of them.
func TestCleanPackages(t *testing.T) {
	in := []store.Package{apt("jq", "1"), apt("jq", "2"), pip("jq", "3"), apt("bad name", "1"), apt("hello", "2.10")}
	kept, dropped := store.CleanPackages(in)
	if want := []store.Package{apt("jq", "1"), pip("jq", "3"), apt("hello", "2.10")}; !reflect.DeepEqual(kept, want) || dropped != 2 {
		t.Errorf("kept %v, dropped %d; want %v and 2", kept, dropped, want)
	}
	many := make([]store.Package, store.MaxPackages+5)
	for i := range many {
		many[i] = pip(fmt.Sprintf("p%d", i), "1")
	}
	if kept, dropped := store.CleanPackages(many); len(kept) != store.MaxPackages || dropped != 5 {
		t.Errorf("%d packages: kept %d, dropped %d", len(many), len(kept), dropped)
	}
}

// TestDiffBuilds compares builds of an image, by default the last two
// successful ones, and refuses what cannot be compared.
func TestDiffBuilds(t *testing.T) {
	s, ctx := open(t), context.Background()
	build := customImage(t, s, "sci")
	old := build([]store.Package{apt("jq", "1.6"), apt("curl", "7"), pip("numpy", "1.26")}, digestN(1))
	mid := build([]store.Package{apt("jq", "1.6"), apt("hello", "2.10"), pip("numpy", "2.0")}, digestN(2))
	r := store.Recipe{BaseImage: "r/base:1", Apt: "jq"}
	failed, err := s.CreateBuild(ctx, "sci", r, "reg/imagehub/sci:f")
	mustNoErr(t, err)
	mustNoErr(t, s.FinishBuild(ctx, failed.ID, store.BuildFailed, "", "no"))
	last := build([]store.Package{apt("jq", "1.6"), apt("hello", "2.10"), pip("numpy", "2.0"), apt("zsh", "5")}, digestN(3))

	d, err := s.DiffBuilds(ctx, "sci", old, mid)
	mustNoErr(t, err)
	want := &store.PackageDiff{From: old, To: mid,
		Added: []store.Package{apt("hello", "2.10")}, Removed: []store.Package{apt("curl", "7")},
		Changed: []store.PackageChange{{Manager: "pip", Name: "numpy", From: "1.26", To: "2.0"}}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("diff %d→%d: %+v, want %+v", old, mid, d, want)
	}
	// The default: the last two successful builds (the failed one between
	// them is skipped); and from the one before a given build.
	d, err = s.DiffBuilds(ctx, "sci", 0, 0)
	mustNoErr(t, err)
	if d.From != mid || d.To != last || !reflect.DeepEqual(d.Added, []store.Package{apt("zsh", "5")}) || len(d.Removed)+len(d.Changed) != 0 {
		t.Errorf("default diff: %+v, want %d→%d adding zsh only", d, mid, last)
	}
	if d, err := s.DiffBuilds(ctx, "sci", 0, mid); err != nil || d.From != old {
		t.Errorf("diff to %d: %+v, %v; want from %d", mid, d, err, old)
	}
	if d, err := s.DiffBuilds(ctx, "sci", last, old); err != nil || !reflect.DeepEqual(d.Added, []store.Package{apt("curl", "7")}) {
		t.Errorf("backwards: %+v, %v", d, err)
	}

	other := customImage(t, s, "other")
	otherBuild := other([]store.Package{}, digestN(9))
	for _, c := range []struct {
		image    string
		from, to int64
		code     string
		field    string
	}{
		{"sci", otherBuild, last, store.EINVALID, "from"},
		{"sci", old, failed.ID, store.EINVALID, "to"},
		{"sci", 0, old, store.EINVALID, "from"},
		{"sci", 9999, last, store.ENOTFOUND, ""},
		{"nope", 0, 0, store.ENOTFOUND, ""},
		{"other", 0, 0, store.EINVALID, "from"},
	} {
		_, err := s.DiffBuilds(ctx, c.image, c.from, c.to)
		if store.ErrorCode(err) != c.code || (c.field != "" && store.ErrorFields(err)[c.field] == "") {
			t.Errorf("diff %s %d→%d: %v, want %s at %q", c.image, c.from, c.to, err, c.code, c.field)
		}
	}
}
