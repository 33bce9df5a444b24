package worker

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/mounts"
	"imagehub/buildah/recipe"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
)

// wantRecorded checks the commands the stand-in package managers recorded in
// an image.
func wantRecorded(t *testing.T, files map[string]imageFile, want ...string) {
	t.Helper()
	f, ok := files["/recorded.txt"]
	if !ok {
		t.Fatal("the image has no /recorded.txt: no package manager ran")
	}
	got := strings.Split(strings.TrimSpace(string(f.content)), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("recorded commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// wantPhases checks the phases a worker reported.
func wantPhases(t *testing.T, rec *recorder, want ...workerspec.Phase) {
	t.Helper()
	if got := rec.phases(); !slices.Equal(got, want) {
		t.Errorf("phases = %v, want %v", got, want)
	}
}

func TestWorkerBuildsPushesAndIsThenUpToDate(t *testing.T) {
	buildtest.NeedRoot(t)
	reg, st := buildtest.Registry(t, ""), newTestStorage(t)
	base, baseDigest := pushTestBase(t, reg, st, testBase{name: "stubs/busybox", extra: allStubs(), user: "1000"})
	pkgs := recipe.Packages{Apt: []string{"curl", "vim"}, Conda: []string{"conda-forge::numpy==1.17*"}, Pip: []string{"requests>=2"}}
	spec := testSpec(t, 1, st, reg, base, "team/all:"+recipe.Tag(base, pkgs), pkgs)

	rec, log, took, err := runTestWorker(t, context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	t.Logf("busybox recipe (apt+conda+pip) built and pushed in %.1fs", took.Seconds())
	// Busybox has no dpkg, pip nor conda: an empty list, and no batch.
	wantPhases(t, rec, workerspec.PhaseBuilding, workerspec.PhaseBase, workerspec.PhasePushing, workerspec.PhaseDone)
	// FROM, USER 0, RUN apt, RUN conda, RUN pip, USER 1000.
	if got, want := rec.steps(), []string{"1/6", "2/6", "3/6", "4/6", "5/6", "6/6"}; !slices.Equal(got, want) {
		t.Errorf("steps = %v, want %v", got, want)
	}
	done := rec.last()
	if !strings.HasPrefix(done.Digest, "sha256:") || done.UpToDate || done.Error != "" || !done.PackagesListed {
		t.Fatalf("done event = %+v", done)
	}
	if got := rec.baseDigest(); got != baseDigest {
		t.Errorf("the build reported the base digest %q, want %s", got, baseDigest)
	}
	if !strings.Contains(log, "imagehub: the image holds 0 apt, 0 pip and 0 conda packages") {
		t.Errorf("the log does not say what the image holds:\n%s", log)
	}
	// Nor Python: the smoke test says it skips its Python part.
	if !strings.Contains(log, "imagehub: smoke test: the image has no python3 on its PATH, so its Python part (pip check, imports) is skipped") {
		t.Errorf("the log does not say that the smoke test skipped Python:\n%s", log)
	}
	pinned := strings.TrimSuffix(base, ":base") + "@" + baseDigest // the base as inspected
	for _, want := range []string{"Containerfile:", "FROM " + pinned + "\n", "USER 1000", "Pushed " + spec.Target + "@" + done.Digest} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	digest, arch, osName := buildtest.SkopeoInspect(t, spec.Target, nil)
	if digest != done.Digest || osName+"/"+arch != "linux/amd64" {
		t.Errorf("skopeo sees %s %s/%s, want %s linux/amd64", digest, osName, arch, done.Digest)
	}
	wantRecorded(t, imageFiles(t, spec.Target, nil),
		"apt-get update",
		"apt-get install -y --no-install-recommends -o Dir::Cache::Archives=/var/cache/apt/imagehub/ -o APT::Keep-Downloaded-Packages=true curl vim",
		"conda install --quiet --yes conda-forge::numpy==1.17*",
		"conda clean --all -f -y",
		"pip install requests>=2")
	if info, err := remote.Inspect(context.Background(), spec.Target, nil, true); err != nil || info.User != "1000" {
		t.Errorf("built image user = %q, %v; want the base's 1000 restored", info.User, err)
	}

	t.Run("second run is up to date", func(t *testing.T) {
		again := testSpec(t, 2, st, reg, base, "team/all:"+recipe.Tag(base, pkgs), pkgs)
		again.KnownDigest, again.KnownBaseDigest = done.Digest, baseDigest
		rec, log, took, err := runTestWorker(t, context.Background(), again)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		wantPhases(t, rec, workerspec.PhaseBase, workerspec.PhaseDone)
		if got := rec.baseDigest(); got != baseDigest {
			t.Errorf("the up-to-date check reported the base digest %q, want %s", got, baseDigest)
		}
		if e := rec.last(); !e.UpToDate || e.Digest != done.Digest {
			t.Errorf("event = %+v, want up to date with %s", e, done.Digest)
		}
		if !strings.Contains(log, "up to date") {
			t.Errorf("log = %q", log)
		}
		t.Logf("up-to-date check took %.2fs", took.Seconds())
	})

	t.Run("pip change reuses the apt and conda layers", func(t *testing.T) {
		more := pkgs
		more.Pip = []string{"requests>=2", "six"}
		spec := testSpec(t, 3, st, reg, base, "team/all:"+recipe.Tag(base, more), more)
		rec, log, took, err := runTestWorker(t, context.Background(), spec)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		t.Logf("rebuild after a pip change took %.1fs", took.Seconds())
		wantPhases(t, rec, workerspec.PhaseBuilding, workerspec.PhaseBase, workerspec.PhasePushing, workerspec.PhaseDone)
		if n := strings.Count(log, cacheHit); n < 2 {
			t.Errorf("log shows %d cached steps, want the apt and conda steps reused:\n%s", n, log)
		}
		wantRecorded(t, imageFiles(t, spec.Target, nil),
			"apt-get update",
			"apt-get install -y --no-install-recommends -o Dir::Cache::Archives=/var/cache/apt/imagehub/ -o APT::Keep-Downloaded-Packages=true curl vim",
			"conda install --quiet --yes conda-forge::numpy==1.17*",
			"conda clean --all -f -y",
			"pip install requests>=2 six")
	})

	t.Run("a base that moved is built on again", func(t *testing.T) {
		_, movedDigest := pushTestBase(t, reg, st, testBase{name: "stubs/busybox", extra: allStubs(), user: "1000"})
		if movedDigest == baseDigest {
			t.Fatal("pushing the base again did not move its tag")
		}
		again := testSpec(t, 4, st, reg, base, "team/all:"+recipe.Tag(base, pkgs), pkgs)
		again.KnownDigest, again.KnownBaseDigest = done.Digest, baseDigest
		rec, log, _, err := runTestWorker(t, context.Background(), again)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		wantPhases(t, rec, workerspec.PhaseBuilding, workerspec.PhaseBase, workerspec.PhasePushing, workerspec.PhaseDone)
		if e := rec.last(); e.UpToDate || e.Digest == done.Digest {
			t.Errorf("done = %+v, want a new image", e)
		}
		if got := rec.baseDigest(); got != movedDigest {
			t.Errorf("the rebuild reported the base digest %q, want the moved base's %s", got, movedDigest)
		}
		pinned := strings.TrimSuffix(base, ":base") + "@" + movedDigest
		for _, want := range []string{"The base image " + base + " moved since", "FROM " + pinned + "\n"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
	})
}

// TestWorkerRebuildsATagItDidNotRecord plays somebody holding the registry's
// push account who replaces a built tag: the next build of the same recipe
// is not "up to date" but builds and pushes again, and the digest imagehub
// recorded first stays pullable. The registry is guarded as the embedded
// one is: the worker pushes with the push account and pulls its base with
// the pull-only account, which may not push.
func TestWorkerRebuildsATagItDidNotRecord(t *testing.T) {
	buildtest.NeedRoot(t)
	reg, push, pull := buildtest.RegistryWithAccounts(t)
	st := newTestStorage(t)
	base, baseDigest := pushTestBase(t, reg, st, testBase{name: "base/busybox", extra: allStubs(), auth: push})
	pkgs := recipe.Packages{Pip: []string{"requests>=2"}}
	target := "imagehub/app:" + recipe.Tag(base, pkgs)
	spec := func(id int64, known string) workerspec.Spec {
		s := testSpec(t, id, st, reg, base, target, pkgs)
		s.PushAuth, s.PullAuth, s.KnownDigest = push, pull, known
		if known != "" {
			s.KnownBaseDigest = baseDigest
		}
		return s
	}
	first := spec(11, "")
	rec, log, _, err := runTestWorker(t, context.Background(), first)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	recorded := rec.last().Digest

	t.Run("the recorded digest is up to date", func(t *testing.T) {
		rec, log, _, err := runTestWorker(t, context.Background(), spec(12, recorded))
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		wantPhases(t, rec, workerspec.PhaseBase, workerspec.PhaseDone)
		if e := rec.last(); !e.UpToDate || e.Digest != recorded {
			t.Errorf("event = %+v, want up to date with %s", e, recorded)
		}
	})

	t.Run("an existing tag with no recorded digest is built again", func(t *testing.T) {
		rec, log, _, err := runTestWorker(t, context.Background(), spec(13, ""))
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		wantPhases(t, rec, workerspec.PhaseBuilding, workerspec.PhaseBase, workerspec.PhasePushing, workerspec.PhaseDone)
		recorded = rec.last().Digest
	})

	t.Run("a tag replaced by somebody else is built and pushed again", func(t *testing.T) {
		buildtest.SkopeoCopy(t, base, first.Target, push)
		tampered, _, _ := buildtest.SkopeoInspect(t, first.Target, pull)
		if tampered == recorded {
			t.Fatal("the copy did not change the tag")
		}
		rec, log, _, err := runTestWorker(t, context.Background(), spec(14, recorded))
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		wantPhases(t, rec, workerspec.PhaseBuilding, workerspec.PhaseBase, workerspec.PhasePushing, workerspec.PhaseDone)
		done := rec.last()
		if done.UpToDate || done.Digest == tampered {
			t.Errorf("done = %+v after the tag was replaced with %s", done, tampered)
		}
		if want := "exists as " + tampered + ", which is not what imagehub recorded for it (" + recorded + ")"; !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
		if now, _, _ := buildtest.SkopeoInspect(t, first.Target, pull); now != done.Digest {
			t.Errorf("the tag names %s, want the new push %s", now, done.Digest)
		}
		wantRecorded(t, imageFiles(t, first.Target, pull), "pip install requests>=2")
		if got, _, _ := buildtest.SkopeoInspect(t, remote.PullReference(first.Target+"@"+recorded), pull); got != recorded {
			t.Errorf("the recorded digest %s is no longer pullable (%s)", recorded, got)
		}
	})

	t.Run("a pinned URL is a base image", func(t *testing.T) {
		pinned := first.Target + "@" + recorded // as the store records a built image's URL
		info, err := remote.Inspect(context.Background(), pinned, pull, true)
		if err != nil || info.Digest != recorded {
			t.Fatalf("Inspect(%s) = %+v, %v", pinned, info, err)
		}
		more := recipe.Packages{Apt: []string{"curl"}}
		derived := testSpec(t, 16, st, reg, pinned, "imagehub/derived:"+recipe.Tag(pinned, more), more)
		derived.PushAuth, derived.PullAuth = push, pull
		_, log, _, err := runTestWorker(t, context.Background(), derived)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		// FROM names the base by its digest alone (the tag would say nothing more).
		repo := first.Target[:strings.LastIndex(first.Target, ":")]
		if want := "FROM " + repo + "@" + recorded; !strings.Contains(log, want+"\n") {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
		wantRecorded(t, imageFiles(t, derived.Target, pull), "pip install requests>=2", "apt-get update",
			"apt-get install -y --no-install-recommends -o Dir::Cache::Archives=/var/cache/apt/imagehub/ -o APT::Keep-Downloaded-Packages=true curl")
	})

	t.Run("the pull account cannot push", func(t *testing.T) {
		bad := spec(15, "")
		bad.Target = reg.Addr() + "/imagehub/other:" + recipe.Tag(base, pkgs)
		bad.PushAuth = pull
		_, log, _, err := runTestWorker(t, context.Background(), bad)
		if err == nil {
			t.Fatalf("pushing with the pull account succeeded:\n%s", log)
		}
		t.Logf("error: %v", err)
		if _, exists, _ := remote.TagExists(context.Background(), bad.Target, pull, true); exists {
			t.Error("the pull account's push left a tag")
		}
	})
}

func TestWorkerBaseWithoutPip(t *testing.T) {
	buildtest.NeedRoot(t)
	reg, st := buildtest.Registry(t, ""), newTestStorage(t)
	base, _ := pushTestBase(t, reg, st, testBase{name: "nopip/busybox", extra: map[string]string{"/usr/bin/apt-get": stubAptGet}})
	pkgs := recipe.Packages{Apt: []string{"curl"}, Pip: []string{"numpy"}}
	spec := testSpec(t, 4, st, reg, base, "team/nopip:"+recipe.Tag(base, pkgs), pkgs)

	rec, log, _, err := runTestWorker(t, context.Background(), spec)
	if err == nil {
		t.Fatalf("Run succeeded on a base without pip:\n%s", log)
	}
	t.Logf("error: %v", err)
	want := "the pip step failed (exit status 1): imagehub: the base image has no pip, so pip packages cannot be installed"
	if msg := err.Error(); msg != want {
		t.Errorf("error = %q, want %q\nlog:\n%s", msg, want, log)
	}
	if slices.Contains(rec.phases(), workerspec.PhasePushing) {
		t.Error("a failed build reported pushing")
	}
	if _, exists, _ := remote.TagExists(context.Background(), spec.Target, nil, true); exists {
		t.Error("a failed build pushed its target")
	}
	if n, err := CleanupBuild(st, spec.BuildID); n != 0 || err != nil {
		t.Errorf("a failed build left %d containers (%v)", n, err)
	}
}

func TestWorkerSpecFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := workerspec.Spec{BuildID: 7, TmpDir: "/tmp/x", BaseImage: "docker.io/library/busybox:latest",
		Packages: recipe.Packages{Pip: []string{"six"}}, Target: "127.0.0.1:5000/a/b:c",
		PullAuth: &remote.Auth{Username: "u", Password: "p"}, Insecure: []string{"127.0.0.1:5000"}}
	if err := workerspec.Write(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spec file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	got, err := workerspec.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.BuildID != 7 || got.PullAuth.Password != "p" || !slices.Equal(got.Packages.Pip, want.Packages.Pip) {
		t.Errorf("read back %+v", got)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("workerspec.Read left the spec file behind")
	}
	if _, err := workerspec.Read(path); err == nil {
		t.Error("reading a missing spec succeeded")
	}
}

func TestWorkerAuthNeverLogged(t *testing.T) {
	buildtest.NeedRoot(t)
	const password = "Pa55-never-in-a-log-7f3c"
	auth := &remote.Auth{Username: "builder", Password: password}
	reg, st := buildtest.Registry(t, buildtest.Htpasswd(t, auth.Username, password)), newTestStorage(t)
	base, _ := pushTestBase(t, reg, st, testBase{name: "private/busybox", extra: allStubs(), auth: auth})
	pkgs := recipe.Packages{Pip: []string{"six"}}
	spec := testSpec(t, 5, st, reg, base, "private/built:"+recipe.Tag(base, pkgs), pkgs)
	spec.PullAuth, spec.PushAuth = auth, auth

	rec, log, _, err := runTestWorker(t, context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	if strings.Contains(log, password) {
		t.Errorf("the password appears in the log:\n%s", log)
	}
	digest, _, _ := buildtest.SkopeoInspect(t, spec.Target, auth)
	if digest != rec.last().Digest {
		t.Errorf("skopeo sees %s, worker reported %s", digest, rec.last().Digest)
	}

	t.Run("wrong push password", func(t *testing.T) {
		const wrong = "Wr0ng-pw-also-secret-91b2"
		pkgs := recipe.Packages{Pip: []string{"seven"}}
		bad := testSpec(t, 6, st, reg, base, "private/built:"+recipe.Tag(base, pkgs), pkgs)
		bad.PullAuth, bad.PushAuth = auth, &remote.Auth{Username: "builder", Password: wrong}
		_, log, _, err := runTestWorker(t, context.Background(), bad)
		if err == nil {
			t.Fatal("pushing with a wrong password succeeded")
		}
		t.Logf("error: %v", err)
		for _, secret := range []string{password, wrong} {
			if strings.Contains(log, secret) || strings.Contains(err.Error(), secret) {
				t.Errorf("a password appears in the log or the error %q:\n%s", err, log)
			}
		}
	})

	t.Run("no pull credentials", func(t *testing.T) {
		pkgs := recipe.Packages{Pip: []string{"eight"}}
		anon := testSpec(t, 7, st, reg, base, "private/built:"+recipe.Tag(base, pkgs), pkgs)
		anon.PushAuth = auth
		_, log, _, err := runTestWorker(t, context.Background(), anon)
		if err == nil {
			t.Fatal("pulling a private base without credentials succeeded")
		}
		t.Logf("error: %v", err)
		if strings.Contains(log, password) {
			t.Errorf("the password appears in the log:\n%s", log)
		}
	})
}

// buildContainers lists the IDs of the containers of one build in a store.
func buildContainers(t *testing.T, st workerspec.Storage, buildID int64) []string {
	t.Helper()
	store, err := OpenStore(st)
	if err != nil {
		t.Fatal(err)
	}
	containers, err := store.Containers()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range containers {
		if matchesAny(buildContainerName(buildID), c.Names) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// mountedLayers lists which of the given containers' file systems are
// mounted, according to this process's mount table.
func mountedLayers(t *testing.T, st workerspec.Storage, ids []string) []string {
	t.Helper()
	store, err := OpenStore(st)
	if err != nil {
		t.Fatal(err)
	}
	points, err := mounts.Under(st.GraphRoot)
	if err != nil {
		t.Fatal(err)
	}
	var mounted []string
	for _, id := range ids {
		c, err := store.Container(id)
		if err != nil {
			continue
		}
		for _, p := range points {
			if strings.Contains(p, c.LayerID) {
				mounted = append(mounted, id)
			}
		}
	}
	return mounted
}

func TestCleanupBuildMatchesOnlyItsContainers(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"imagehub-build-1", true},
		{"busybox-imagehub-build-1", true},
		{"busybox-imagehub-build-1-2", true},
		{"0e4b2d70c4cf-imagehub-build-1-13", true},
		{"busybox-imagehub-build-12", false},
		{"busybox-imagehub-build-11-2", false},
		{"busybox-imagehub-build-1-x", false},
		{"busybox-working-container", false},
		{"myimagehub-build-1", false},
	}
	for _, tt := range tests {
		if got := buildContainerName(1).MatchString(tt.name); got != tt.want {
			t.Errorf("container %q belongs to build 1: %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := ContainerSuffix(42); got != "imagehub-build-42" {
		t.Errorf("ContainerSuffix(42) = %q", got)
	}
}

func TestCleanupOpenStoreKeepsTheStoresDriver(t *testing.T) {
	buildtest.NeedRoot(t)
	st := newTestStorage(t)
	st.Driver = driverVFS
	if _, err := OpenStore(st); err != nil {
		t.Fatal(err)
	}
	st.Driver = ""
	store, err := OpenStore(st)
	if err != nil || store.GraphDriverName() != driverVFS {
		t.Errorf("reopening a vfs store without a driver = %v, %v; want vfs", store.GraphDriverName(), err)
	}
	fresh := newTestStorage(t)
	if store, err := OpenStore(fresh); err != nil || store.GraphDriverName() != driverOverlay {
		t.Logf("a new store uses %v (%v): overlay is not available here", store, err)
	}
	if _, err := OpenStore(workerspec.Storage{GraphRoot: "/x"}); err == nil {
		t.Error("a store without a run root opened")
	}
}

func TestCleanupBuildAfterKilledWorker(t *testing.T) {
	buildtest.NeedRoot(t)
	reg, st := buildtest.Registry(t, ""), newTestStorage(t)
	base, _ := pushTestBase(t, reg, st, testBase{name: "sleepy/busybox", extra: allStubs()})
	sleepy := recipe.Packages{Apt: []string{"sleepy"}}
	// The victim shares this process's mount namespace: the worst case, its
	// mounts outlive it. The bystander runs in a namespace of its own.
	victimSpec := testSpec(t, 101, st, reg, base, "team/victim:1", sleepy)
	victim := startChildWorker(t, victimSpec, childOptions{})
	bystander := startChildWorker(t, testSpec(t, 102, st, reg, base, "team/bystander:1", sleepy), childOptions{ownMountNS: true})
	victim.waitFor(t, "sleeping now", 60*time.Second)
	bystander.waitFor(t, "sleeping now", 60*time.Second)
	if store, _ := OpenStore(st); store != nil {
		t.Logf("store driver: %s", store.GraphDriverName())
	}

	victim.kill(t)
	left := buildContainers(t, st, 101)
	if len(left) == 0 {
		t.Fatal("the killed worker left no working container: nothing to test")
	}
	others := buildContainers(t, st, 102)
	if len(others) == 0 {
		t.Fatal("the running worker has no working container")
	}
	if got := mountedLayers(t, st, left); len(got) == 0 {
		t.Error("the killed worker's container is not mounted: the test shows nothing")
	}
	if got := mountedLayers(t, st, others); len(got) != 0 {
		t.Error("a worker in its own mount namespace has mounts in this one")
	}
	n, err := CleanupBuild(st, 101)
	if err != nil || n != len(left) {
		t.Fatalf("CleanupBuild = %d, %v; want %d, nil", n, err, len(left))
	}
	if got := buildContainers(t, st, 101); len(got) != 0 {
		t.Errorf("containers of the killed build remain: %v", got)
	}
	if got := mountedLayers(t, st, left); len(got) != 0 {
		t.Errorf("file systems of the killed build remain mounted: %v", got)
	}
	if err := mounts.RemoveAll(victimSpec.TmpDir); err != nil {
		t.Errorf("RemoveBuildDir: %v", err)
	}
	if points, _ := mounts.Under(victimSpec.TmpDir); len(points) != 0 {
		t.Errorf("still mounted in the killed build's folder: %v", points)
	}
	if got := buildContainers(t, st, 102); !slices.Equal(got, others) {
		t.Errorf("the other build's containers changed: %v, want %v", got, others)
	}
	if !bystander.alive() {
		t.Errorf("cleaning up one build ended another:\n%s", bystander.log())
	}

	bystander.kill(t)
	if n, err := CleanupBuild(st, 102); err != nil || n != len(others) {
		t.Errorf("CleanupBuild(102) = %d, %v; want %d", n, err, len(others))
	}
	if points, _ := mounts.Under(st.GraphRoot); len(points) != 0 {
		t.Errorf("still mounted under the graph root: %v", points)
	}
	if n, err := CleanupBuild(st, 102); n != 0 || err != nil {
		t.Errorf("a second CleanupBuild = %d, %v; want 0, nil", n, err)
	}
}

func TestCleanupBuildAfterCancelledContext(t *testing.T) {
	buildtest.NeedRoot(t)
	// vfs here, overlay (this kernel's choice) everywhere else.
	reg, st := buildtest.Registry(t, ""), newTestStorage(t)
	st.Driver = driverVFS
	base, _ := pushTestBase(t, reg, st, testBase{name: "napping/busybox", extra: allStubs()})
	spec := testSpec(t, 103, st, reg, base, "team/napping:1", recipe.Packages{Apt: []string{"napping"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &lockedBuffer{}
	result := make(chan error, 1)
	go func() { result <- Run(ctx, spec, log, nil) }()
	for !strings.Contains(log.String(), "sleeping now") {
		select {
		case err := <-result:
			t.Fatalf("worker ended early: %v\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-result:
		if err == nil || err.Error() != "the build was cancelled" {
			t.Errorf("Run after cancel = %v, want the build was cancelled", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Run did not return after its context was cancelled:\n%s", log)
	}
	if store, err := OpenStore(st); err != nil || store.GraphDriverName() != driverVFS {
		t.Fatalf("store = %v, want vfs", err)
	}
	if _, err := CleanupBuild(st, 103); err != nil {
		t.Fatal(err)
	}
	if got := buildContainers(t, st, 103); len(got) != 0 {
		t.Errorf("containers remain after cleanup: %v", got)
	}
	if points, _ := mounts.Under(st.GraphRoot); len(points) != 0 {
		t.Errorf("still mounted under the graph root: %v", points)
	}
}

// rootlessEnv is the whole environment a rootless worker gets: the service
// user's home (containers/image and storage look there for per-user
// configuration) and a PATH with newuidmap/newgidmap.
func rootlessEnv(u *user.User) []string {
	return []string{
		"HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	}
}

// rootlessDir makes a folder the service user can work in, under a parent
// everyone may enter, and copies the test binary there (the go test build
// folder is private to root).
func rootlessDir(t *testing.T, uid, gid int) (dir, exe string) {
	t.Helper()
	parent, err := os.MkdirTemp("", "imagehub-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mounts.RemoveAll(parent); err != nil {
			t.Error(err)
		}
	})
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(parent, "worker")
	if err := copyFile(self, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	// 0711, as the server's data folder: RUN steps run as subordinate ids,
	// which pass through it to their build's folder.
	dir = filepath.Join(parent, "work")
	if err := os.Mkdir(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir, exe
}

func TestRootlessWorker(t *testing.T) {
	buildtest.NeedRoot(t)
	u, err := user.Lookup("imagehub")
	if err != nil {
		t.Skip("no user imagehub: .ci/install.sh creates it, with /etc/subuid and /etc/subgid ranges")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	reg := buildtest.Registry(t, "")
	base, _ := pushTestBase(t, reg, newTestStorage(t), testBase{name: "rootless/busybox", extra: allStubs(), user: "1000"})

	dir, exe := rootlessDir(t, uid, gid)
	pkgs := recipe.Packages{Apt: []string{"curl"}, Conda: []string{"numpy"}, Pip: []string{"six"}}
	spec := workerspec.Spec{
		BuildID: 301, TmpDir: filepath.Join(dir, "tmp"), BaseImage: base, Packages: pkgs,
		Storage:  workerspec.Storage{GraphRoot: filepath.Join(dir, "storage", "graph"), RunRoot: filepath.Join(dir, "storage", "run")},
		Target:   reg.Addr() + "/rootless/built:" + recipe.Tag(base, pkgs),
		Insecure: []string{reg.Addr()}, Owner: "system",
		// Made by the worker, as the server's data/cache/packages is.
		PackageCache: filepath.Join(dir, "cache", "packages"),
	}
	for _, d := range []string{spec.TmpDir, filepath.Dir(spec.Storage.GraphRoot)} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		chownAll(t, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, d)
	}
	start := time.Now()
	c := startChildWorker(t, spec, childOptions{
		exe: exe, dir: dir, env: rootlessEnv(u),
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
	})
	if err := c.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("rootless worker: %v\n%s", err, c.log())
	}
	t.Logf("rootless busybox recipe built and pushed in %.1fs, %s storage", time.Since(start).Seconds(), recordedDriver(spec.Storage.GraphRoot))
	if want := fmt.Sprintf("worker: uid 0, rootless true, host uid %d\n", uid); !strings.Contains(c.log(), want) {
		t.Errorf("the worker did not run in a user namespace of the service user (want %q):\n%s", want, c.log())
	}
	events, steps := withoutSteps(readEvents(t, c.events))
	if want := []string{"1/6", "2/6", "3/6", "4/6", "5/6", "6/6"}; !slices.Equal(steps, want) {
		t.Errorf("steps = %v, want %v", steps, want)
	}
	if len(events) != 4 || events[1].Phase != workerspec.PhaseBase || events[1].BaseDigest == "" ||
		events[3].Phase != workerspec.PhaseDone || events[3].Digest == "" {
		t.Fatalf("events = %+v\n%s", events, c.log())
	}
	if digest, _, _ := buildtest.SkopeoInspect(t, spec.Target, nil); digest != events[3].Digest {
		t.Errorf("skopeo sees %s, worker reported %s", digest, events[3].Digest)
	}
	wantRecorded(t, imageFiles(t, spec.Target, nil),
		"apt-get update", "apt-get install -y --no-install-recommends -o Dir::Cache::Archives=/var/cache/apt/imagehub/ -o APT::Keep-Downloaded-Packages=true curl",
		"conda install --quiet --yes numpy", "conda clean --all -f -y",
		"pip install six")
	fi, err := os.Stat(spec.Storage.GraphRoot)
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
		t.Errorf("the graph root is not the service user's: %v", err)
	}
	// The three RUN steps mounted four caches (apt's two) from the shared
	// folder, each owned by the container's root: a subordinate id.
	caches := packageCaches(t, spec.PackageCache)
	if len(caches) != 4 {
		t.Errorf("package cache folder holds %d caches, want 4: %v", len(caches), caches)
	}
	for _, c := range caches {
		if fi, err := os.Stat(c); err != nil || fi.Sys().(*syscall.Stat_t).Uid == uint32(uid) {
			t.Errorf("cache %s is not owned by a subordinate id (%v)", c, err)
		}
	}
}

// packageCaches lists the caches buildah made in a package cache folder (a
// folder each, named by a hash of its id), leaving out its lock files.
func packageCaches(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "buildah-cache-lockfiles" {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}
