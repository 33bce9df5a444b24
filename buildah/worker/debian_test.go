package worker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/recipe"
	"imagehub/buildah/workerspec"
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
//     store sharing the package cache, fetches no .deb at all: apt says
//     "0 B" and the mirror sees no request for one.
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
	build := func(id int64, st workerspec.Storage, pkgs recipe.Packages) (string, workerspec.Spec) {
		t.Helper()
		spec := testSpec(t, id, st, reg, base, "team/debian:"+recipe.Tag(base, pkgs), pkgs)
		spec.Owner, spec.PackageCache, spec.Mirrors = "team", cache, mirrors
		_, log, took, err := runTestWorker(t, context.Background(), spec)
		if err != nil {
			t.Fatalf("build %d: %v\n%s", id, err, log)
		}
		if strings.Contains(log, password) {
			t.Errorf("build %d: the mirror's password is in the log:\n%s", id, log)
		}
		t.Logf("build %d (%v) took %.1fs", id, pkgs, took.Seconds())
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
		"--mount=type=cache,id=team/" + base[:strings.LastIndex(base, ":")] + "/apt,"} {
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
		t.Logf("wheel downloads: %d before, %d after (pip's cache)", wheelsBefore, wheelsAfter)
		checkLayers(t, spec.Target, password)
	})

	// The caches live in the shared folder, made by buildah as the
	// container's root: apt's two and pip's.
	if caches := packageCaches(t, cache); len(caches) != 3 {
		t.Errorf("package cache folder holds %d caches, want 3: %v", len(caches), caches)
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
