package worker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.podman.io/storage"

	"imagehub/buildah/workerspec"
)

// Storage drivers this service uses.
const (
	driverOverlay = "overlay"
	driverVFS     = "vfs"
)

// OpenStore opens the containers/storage store that all workers share. The
// driver is s.Driver when set. Otherwise a store keeps the driver it was
// first opened with (recorded in a file of its own in the graph root, so the
// layer cache survives and two drivers never mix in one store), and a new
// store gets overlay when the kernel lets this process mount it and vfs when
// it does not. The overlay driver checks that itself with a test mount when
// it starts, so trying it is the cheapest detection that is never wrong.
//
// The store is opened without the private bind mount that the overlay driver
// normally puts on its own folder: a worker that is killed could not remove
// it, and the layer mounts of running builds need no such protection here.
// containers/storage keeps one store per graph root in each process; a second
// call returns the same one.
func OpenStore(s workerspec.Storage) (storage.Store, error) {
	if s.GraphRoot == "" || s.RunRoot == "" {
		return nil, errors.New("storage needs both a graph root and a run root")
	}
	driver := s.Driver
	if driver == "" {
		driver = recordedDriver(s.GraphRoot)
	}
	if driver != "" {
		return openAndRecord(s, driver)
	}
	store, overlayErr := openAndRecord(s, driverOverlay)
	if overlayErr == nil {
		return store, nil
	}
	store, err := openAndRecord(s, driverVFS)
	if err != nil {
		return nil, fmt.Errorf("%w (and overlay: %v)", err, overlayErr)
	}
	return store, nil
}

// driverFile names the file in a graph root that records its driver.
const driverFile = "imagehub-driver"

// recordedDriver is the driver a store was first opened with, or "".
func recordedDriver(graphRoot string) string {
	data, err := os.ReadFile(filepath.Join(graphRoot, driverFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// openAndRecord opens the store with a driver and records the driver when
// the store has none recorded yet.
func openAndRecord(s workerspec.Storage, driver string) (storage.Store, error) {
	store, err := getStore(s, driver)
	if err != nil {
		return nil, err
	}
	if recordedDriver(s.GraphRoot) == "" {
		if err := recordDriver(s.GraphRoot, driver); err != nil {
			return nil, err
		}
	}
	return store, nil
}

// recordDriver writes the driver file atomically, so that workers starting
// at the same moment never read half of it.
func recordDriver(graphRoot, driver string) error {
	tmp, err := os.CreateTemp(graphRoot, driverFile+".*")
	if err != nil {
		return fmt.Errorf("recording the storage driver: %w", err)
	}
	_, err = tmp.WriteString(driver + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(graphRoot, driverFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("recording the storage driver: %w", err)
	}
	return nil
}

// getStore opens the store with one given driver.
func getStore(s workerspec.Storage, driver string) (storage.Store, error) {
	opts := storage.StoreOptions{
		GraphRoot:       s.GraphRoot,
		RunRoot:         s.RunRoot,
		GraphDriverName: driver,
	}
	if driver == driverOverlay {
		opts.GraphDriverOptions = []string{"overlay.skip_mount_home=true"}
	}
	store, err := storage.GetStore(opts)
	if err != nil {
		return nil, fmt.Errorf("opening %s storage in %s: %w", driver, s.GraphRoot, err)
	}
	return store, nil
}

// ContainerSuffix is the name suffix of every working container of one build.
// buildah names a build's containers "<image>-<suffix>", adding "-N" when that
// name is taken, so the suffix tells the containers of one build apart from
// those of every other build sharing the store.
func ContainerSuffix(buildID int64) string {
	return fmt.Sprintf("imagehub-build-%d", buildID)
}

// buildContainerName matches the container names buildah gives to the
// working containers of the build with the given id.
func buildContainerName(buildID int64) *regexp.Regexp {
	suffix := regexp.QuoteMeta(ContainerSuffix(buildID))
	return regexp.MustCompile(`(^|-)` + suffix + `(-[0-9]+)?$`)
}

// CleanupBuild deletes the working containers that one build left behind
// (when its worker was killed, say) and unmounts their file systems. It
// touches no container of any other build, so it is safe while other builds
// run in the same store. It returns how many containers it deleted.
//
// The store stays open in this process afterwards: shutting it down would
// unmount the layers that running builds in other processes use.
func CleanupBuild(s workerspec.Storage, buildID int64) (int, error) {
	store, err := OpenStore(s)
	if err != nil {
		return 0, err
	}
	containers, err := store.Containers()
	if err != nil {
		return 0, fmt.Errorf("listing containers: %w", err)
	}
	match := buildContainerName(buildID)
	deleted := 0
	var errs []error
	for _, c := range containers {
		if !matchesAny(match, c.Names) {
			continue
		}
		if err := deleteContainer(store, c.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}

// matchesAny reports whether one of names matches re.
func matchesAny(re *regexp.Regexp, names []string) bool {
	for _, n := range names {
		if re.MatchString(n) {
			return true
		}
	}
	return false
}

// deleteContainer unmounts a container however many times it was mounted
// (a killed process never unmounted its own mounts) and deletes it.
func deleteContainer(store storage.Store, id string) error {
	if _, err := store.Unmount(id, true); err != nil && !errors.Is(err, storage.ErrLayerNotMounted) {
		return fmt.Errorf("unmounting container %s: %w", shortID(id), err)
	}
	if err := store.DeleteContainer(id); err != nil {
		return fmt.Errorf("deleting container %s: %w", shortID(id), err)
	}
	return nil
}

// shortID is the 12-character form of a storage ID that people read.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
