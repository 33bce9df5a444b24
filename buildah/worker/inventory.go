package worker

import (
	"fmt"
	"io"
	"slices"

	"go.podman.io/storage"

	"imagehub/buildah/inventory"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// listPackages reads which packages the built image holds and sends them
// as PhasePackages events, reporting whether it did. The image is mounted
// read-only and read by inventory.Read, which runs nothing of it and
// bounds what it reads. A failure is told in the log and leaves the build
// without a list; the build goes on.
func listPackages(st storage.Store, imageID string, log io.Writer, events func(workerspec.Event)) bool {
	res, err := readPackages(st, imageID)
	if err != nil {
		fmt.Fprintf(log, "imagehub: the image's packages are not listed: %s\n", workerspec.Reason(err))
		return false
	}
	for _, note := range res.Notes {
		fmt.Fprintf(log, "imagehub: package list: %s\n", workerspec.Reason(fmt.Errorf("%s", note)))
	}
	for batch := range slices.Chunk(res.Packages, workerspec.PackagesPerEvent) {
		events(workerspec.Event{Phase: workerspec.PhasePackages, Packages: batch})
	}
	fmt.Fprintf(log, "imagehub: the image holds %s\n", packageCounts(res.Packages))
	return true
}

// readPackages mounts the image, reads its packages and unmounts it.
func readPackages(st storage.Store, imageID string) (res inventory.Result, err error) {
	root, err := st.MountImage(imageID, nil, "")
	if err != nil {
		return res, fmt.Errorf("mounting the image: %w", err)
	}
	defer func() {
		if _, uerr := st.UnmountImage(imageID, false); uerr != nil && err == nil {
			err = fmt.Errorf("unmounting the image: %w", uerr)
		}
	}()
	return inventory.Read(root, inventory.DefaultLimits)
}

// packageCounts says how many packages of each manager a list holds:
// "412 apt, 3 pip and 0 conda packages".
func packageCounts(pkgs []store.Package) string {
	n := map[store.PackageManager]int{}
	for _, p := range pkgs {
		n[p.Manager]++
	}
	return fmt.Sprintf("%d apt, %d pip and %d conda packages", n[store.ManagerApt], n[store.ManagerPip], n[store.ManagerConda])
}
