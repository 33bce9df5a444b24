package worker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/recipe"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// TestWorkerDebianPackages builds real packages on Debian minbase through
// package mirrors: an APT mirror in front of the Debian mirror and a PEP 503
// index with a wheel made here, both behind basic auth, with the
// credentials given as the worker gets them from a secret. It checks that
//   - a cold build installs hello and python3-pip through the APT mirror
//     and the wheel through the index, and a second build of the same
//     image with one more pip package reuses the apt layer;
//   - the password is in no log and in no layer of the pushed images, and
//     neither are the package caches (no .deb, no pip cache) or the
//     mirrors' files;
//   - a cold build of a second image with the same packages, in a new
//     store sharing the package cache, fetches no .deb at all (apt says
//     "0 B" and the mirror sees no request for one) and no wheel;
//   - the smoke test imports the wheel's module, named by its RECORD;
//   - each build lists the image's packages: its apt packages are exactly
//     those the image's dpkg status says are installed, with their
//     versions, the wheels are among its pip packages, and a rebuild that
//     adds a package (hello after jq, a wheel) adds it and changes nothing
//     else.
func TestWorkerDebianPackages(t *testing.T) {
	buildtest.NeedRoot(t)
	if testing.Short() {
		t.Skip("debootstrap and real apt-get installs take minutes")
	}
	const password = "Mirr0r-pass-never-logged-5e1d"
	mirror := newMirrorServer("builder", password)
	mirror.addWheel(t, "imagehub-probe", "1.0", "probe-one")
	mirror.addWheel(t, "imagehub-probe-two", "2.0", "probe-two")
	addr := buildtest.ReachableServer(t, mirror)
	t.Logf("package mirror at %s, in a network namespace of its own", addr)
	auth := &workerspec.HostAuth{Host: addr, Username: "builder", Password: password}
	mirrors := workerspec.Mirrors{
		AptMirror: "http://" + addr, AptAuth: auth,
		PipIndexURL: "http://" + addr + "/simple/", PipAuth: auth,
	}

	reg := buildtest.Registry(t, "")
	base, _ := pushTestBase(t, reg, newTestStorage(t), testBase{kind: BaseDebian, name: "debian/minbase"})
	if files := imageFiles(t, base, nil); !strings.Contains(string(files["/etc/apt/sources.list"].content), "bookworm-security") {
		t.Errorf("the Debian base's sources.list = %q", files["/etc/apt/sources.list"].content)
	}
	cache := filepath.Join(buildtest.TraversableDir(t), "packages")
	lists := map[int64][]store.Package{} // what each build listed
	build := func(id int64, st workerspec.Storage, pkgs recipe.Packages) (string, workerspec.Spec) {
		t.Helper()
		spec := testSpec(t, id, st, reg, base, "team/debian:"+recipe.Tag(base, pkgs), pkgs)
		spec.Owner, spec.PackageCache, spec.Mirrors = "team", cache, mirrors
		rec, log, took, err := runTestWorker(t, context.Background(), spec)
		if err != nil {
			t.Fatalf("build %d: %v\n%s", id, err, log)
		}
		if strings.Contains(log, password) {
			t.Errorf("build %d: the mirror's password is in the log:\n%s", id, log)
		}
		t.Logf("build %d (%v) took %.1fs", id, pkgs, took.Seconds())
		lists[id] = listed(t, rec)
		return log, spec
	}

	pkgs := recipe.Packages{Apt: []string{"hello", "python3-pip"}, Pip: []string{"imagehub-probe"}}
	st := newTestStorage(t)
	log, spec := build(201, st, pkgs)
	debs, indexGets, wheelGets, _ := mirror.counts()
	if !slices.ContainsFunc(debs, func(p string) bool { return strings.Contains(p, "/hello_") }) || indexGets == 0 || wheelGets == 0 {
		t.Fatalf("the mirrors were not used: .deb %v, index %d, wheel %d\n%s", debs, indexGets, wheelGets, log)
	}
	for _, want := range []string{"imagehub: APT mirror http://" + addr + " (with credentials for " + addr + ")",
		"--mount=type=cache,id=team/" + base[:strings.LastIndex(base, ":")] + "/apt,",
		// The smoke test imports the wheel's module, named by its RECORD
		// (the wheel has no top_level.txt).
		"imagehub smoke: import imagehub-probe: imagehub_probe\n", "imagehub: smoke test passed\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	files := imageFiles(t, spec.Target, nil)
	if f, ok := files["/usr/bin/hello"]; !ok || len(f.content) == 0 || f.mode&0o111 == 0 {
		t.Errorf("the image has no executable /usr/bin/hello")
	}
	if f := files["/usr/local/lib/python3.11/dist-packages/imagehub_probe/__init__.py"]; !strings.Contains(string(f.content), "probe-one") {
		t.Errorf("the wheel from the index is not installed: %q", f.content)
	}
	if got := string(files["/etc/apt/sources.list"].content); strings.Contains(got, addr) {
		t.Errorf("the image's sources.list names the mirror: %q", got)
	}
	checkLayers(t, spec.Target, password)
	checkList(t, lists[201], files, "hello", "python3-pip")
	if !slices.Contains(lists[201], store.Package{Manager: store.ManagerPip, Name: "imagehub-probe", Version: "1.0"}) {
		t.Errorf("the list lacks the wheel installed from the index, pip imagehub-probe 1.0")
	}

	t.Run("a pip change reuses the apt layer", func(t *testing.T) {
		more := pkgs
		more.Pip = []string{"imagehub-probe", "imagehub-probe-two"}
		log, spec := build(202, st, more)
		if !strings.Contains(log, cacheHit) {
			t.Errorf("the rebuild did not reuse the apt layer:\n%s", log)
		}
		files := imageFiles(t, spec.Target, nil)
		if f := files["/usr/local/lib/python3.11/dist-packages/imagehub_probe_two/__init__.py"]; !strings.Contains(string(f.content), "probe-two") {
			t.Errorf("the second wheel is not installed: %q", f.content)
		}
		wantDiff(t, lists[201], lists[202], store.Package{Manager: store.ManagerPip, Name: "imagehub-probe-two", Version: "2.0"})
	})

	t.Run("apt jq, then a rebuild adding hello", func(t *testing.T) {
		_, spec := build(204, st, recipe.Packages{Apt: []string{"jq"}})
		checkList(t, lists[204], imageFiles(t, spec.Target, nil), "jq")
		build(205, st, recipe.Packages{Apt: []string{"jq", "hello"}})
		var hello store.Package
		for _, p := range lists[205] {
			if p.Manager == store.ManagerApt && p.Name == "hello" {
				hello = p
			}
		}
		wantDiff(t, lists[204], lists[205], hello)
	})

	t.Run("a second image with the same packages fetches no .deb", func(t *testing.T) {
		before, _, wheelsBefore, _ := mirror.counts()
		log, spec := build(203, newTestStorage(t), pkgs)
		after, _, wheelsAfter, _ := mirror.counts()
		if len(after) != len(before) {
			t.Errorf("the second image's apt step fetched %v", after[len(before):])
		}
		if !strings.Contains(log, "Need to get 0 B/") {
			t.Errorf("apt did not say it needs 0 B:\n%s", log)
		}
		if strings.Contains(log, cacheHit) {
			t.Errorf("a new store reused a layer:\n%s", log)
		}
		if wheelsAfter != wheelsBefore || !strings.Contains(log, "Using cached http://"+addr+"/files/imagehub_probe-1.0-py3-none-any.whl") {
			t.Errorf("pip downloaded the wheel again (%d, then %d) instead of using its cache:\n%s", wheelsBefore, wheelsAfter, log)
		}
		checkLayers(t, spec.Target, password)
	})

	// The caches live in the shared folder, made by buildah as the
	// container's root: apt's two and pip's.
	if caches := packageCaches(t, cache); len(caches) != 3 {
		t.Errorf("package cache folder holds %d caches, want 3: %v", len(caches), caches)
	}
}

// listed returns the package list a worker reported: its packages events,
// which must come before the push and be complete (PackagesListed).
func listed(t *testing.T, rec *recorder) []store.Package {
	t.Helper()
	var pkgs []store.Package
	pushed := false
	for _, e := range rec.events {
		switch e.Phase {
		case workerspec.PhasePackages:
			if pushed {
				t.Error("packages reported after the push began")
			}
			pkgs = append(pkgs, e.Packages...)
		case workerspec.PhasePushing:
			pushed = true
		}
	}
	if !rec.last().PackagesListed {
		t.Errorf("the worker did not list the image's packages: %+v", rec.last())
	}
	return pkgs
}

// checkList compares the apt part of a package list with what the image's
// own /var/lib/dpkg/status says is installed, package by package, and checks
// that the named packages are among them.
func checkList(t *testing.T, list []store.Package, files map[string]imageFile, names ...string) {
	t.Helper()
	want := map[string]string{}
	for _, stanza := range strings.Split(string(files["/var/lib/dpkg/status"].content), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
				fields[k] = v
			}
		}
		if fields["Package"] != "" && strings.HasSuffix(fields["Status"], " ok installed") {
			want[fields["Package"]] = fields["Version"]
		}
	}
	got := map[string]string{}
	for _, p := range list {
		if p.Manager == store.ManagerApt {
			got[p.Name] = p.Version
		}
	}
	if len(want) < 50 || !maps.Equal(got, want) {
		t.Errorf("the list's apt packages (%d) are not those of the image's dpkg status (%d):\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for _, name := range names {
		if got[name] == "" {
			t.Errorf("the list lacks %s", name)
		}
	}
}

// wantDiff checks that from one list to the next exactly the packages
// added were added, and nothing else changed.
func wantDiff(t *testing.T, from, to []store.Package, added ...store.Package) {
	t.Helper()
	gotAdded, removed, changed := store.DiffPackages(from, to)
	if !slices.Equal(gotAdded, added) || len(removed) != 0 || len(changed) != 0 {
		t.Errorf("diff: added %v, removed %v, changed %v; want only %v added", gotAdded, removed, changed, added)
	}
}

// checkLayers reads the layers a build added to the base image (its one
// layer) and fails on what must never be in one: the password, a downloaded
// .deb, apt's lists, pip's cache, the build's secrets or the rewritten APT
// sources.
func checkLayers(t *testing.T, ref, password string) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+dir+":img").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy %s: %v\n%s", ref, err, out)
	}
	layers := ociLayers(t, dir)
	if len(layers) < 2 {
		t.Fatalf("%s has %d layers, want the base's and the build's", ref, len(layers))
	}
	for i, layer := range layers[1:] {
		f, err := os.Open(layer)
		if err != nil {
			t.Fatal(err)
		}
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(gz)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			name := "/" + strings.TrimPrefix(hdr.Name, "./")
			content, _ := io.ReadAll(tr)
			switch {
			case bytes.Contains(content, []byte(password)) || strings.Contains(hdr.Linkname+name, password):
				t.Errorf("layer %d: %s holds the password", i, name)
			case strings.HasSuffix(name, ".deb"),
				strings.HasPrefix(name, "/var/lib/apt/lists/") && !strings.HasPrefix(strings.TrimPrefix(name, "/var/lib/apt/lists/"), ".wh.") && name != "/var/lib/apt/lists/",
				strings.HasPrefix(name, "/var/cache/imagehub"), strings.HasPrefix(name, "/var/cache/apt/imagehub"),
				strings.HasPrefix(name, "/run/secrets/"), strings.HasPrefix(name, "/run/imagehub"),
				strings.HasPrefix(name, "/root/.cache/pip/"):
				t.Errorf("layer %d holds %s", i, name)
			}
		}
		f.Close()
	}
}
