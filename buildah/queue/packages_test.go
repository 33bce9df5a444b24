package queue

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// TestQueueStoresThePackageList: the packages a worker reports in batches
// become the build's list with its success, cleaned of what a list may not
// hold (said in the log); a success without PackagesListed has no list of
// its own, and an up-to-date build gets the list of the build that pushed
// the same digest.
func TestQueueStoresThePackageList(t *testing.T) {
	e := newQueueEnv(t, nil)
	ctx := context.Background()
	b := e.queueBuild(t, "foo", okRecipe)
	e.run(t)
	j := e.nextJob(t)
	var want []store.Package
	for i := range 450 {
		want = append(want, store.Package{Manager: store.ManagerApt, Name: fmt.Sprintf("p%03d", i), Version: "1"})
	}
	bad := []store.Package{want[0], {Manager: store.ManagerPip, Name: "bad name", Version: "1"}}
	j.emit(workerspec.Event{Phase: workerspec.PhaseBuilding})
	for _, batch := range [][]store.Package{want[:200], want[200:400], append(want[400:], bad...)} {
		j.emit(workerspec.Event{Phase: workerspec.PhasePackages, Packages: batch})
	}
	j.emit(workerspec.Event{Phase: workerspec.PhasePushing})
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Digest: feedDigest, PackagesListed: true})
	j.exit(nil)
	e.waitStatus(t, b.ID, store.BuildSucceeded)
	page, err := e.st.ListPackages(ctx, b.ID, store.PackageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(page.Items, want) {
		t.Errorf("the stored list has %d packages, want the %d reported (the bad ones left out)", len(page.Items), len(want))
	}
	if log := e.logText(t, b.ID); !strings.Contains(log, "imagehub: 2 packages of the image's list were left out") {
		t.Errorf("the log does not say what was left out:\n%s", log)
	}

	// Without PackagesListed the batches are no list (the worker could
	// not finish reading): none, since no earlier build pushed its digest.
	r := okRecipe
	r.Pip = "scipy"
	next, err := e.st.CreateBuild(ctx, b.Image, r, b.TargetImage+"x")
	if err != nil {
		t.Fatal(err)
	}
	e.q.Notify()
	j = e.nextJob(t)
	j.emit(workerspec.Event{Phase: workerspec.PhasePackages, Packages: want[:3]})
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Digest: oldDigest})
	j.exit(nil)
	if got := e.waitStatus(t, next.ID, store.BuildSucceeded); got.PackageCount != nil {
		t.Errorf("a build whose worker listed nothing has %d packages", *got.PackageCount)
	}

	// Up to date with the first build's digest: its list.
	again, err := e.st.CreateBuild(ctx, b.Image, okRecipe, b.TargetImage)
	if err != nil {
		t.Fatal(err)
	}
	e.q.Notify()
	j = e.nextJob(t)
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, UpToDate: true, Digest: feedDigest})
	j.exit(nil)
	if got := e.waitStatus(t, again.ID, store.BuildSucceeded); got.PackageCount == nil || *got.PackageCount != len(want) {
		t.Errorf("the up-to-date build's list: %v packages, want %d", got.PackageCount, len(want))
	}
}
