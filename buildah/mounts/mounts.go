// Package mounts finds and removes the mount points a build leaves below a
// folder (a killed worker may leave its overlay and bind mounts behind), so
// that the folder can be removed, and measures what a folder takes on its
// file system without counting what is mounted below it (usage.go).
package mounts

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// RemoveAll removes a build's temporary folder (WorkerSpec.TmpDir)
// after its worker has ended, however it ended. buildah mounts an overlay
// over the build context inside that folder for the length of a build; a
// worker that was killed leaves it mounted, in the mount namespace the worker
// ran in. RemoveAll unmounts everything below dir in the caller's mount
// namespace first, so call it from the process that started the worker (a
// worker started in a mount namespace of its own leaves nothing mounted).
func RemoveAll(dir string) error {
	if err := UnmountUnder(dir); err != nil {
		return err
	}
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	// Folders a build made read-only (overlay work dirs, say) stop an
	// unprivileged owner: open them up and try once more.
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing build folder: %w", err)
	}
	return nil
}

// UnmountUnder lazily unmounts every mount point below dir, deepest first.
func UnmountUnder(dir string) error {
	points, err := Under(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// Under lists the mount points of this process at or below dir, deepest
// first.
func Under(dir string) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountinfo(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	return points, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
