package metrics

import (
	"io/fs"
	"maps"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// How the disk use is measured: walking a layer store of a year's builds
// takes a while, so the figures are kept between scrapes.
const (
	// diskMinAge is the least time between two walks; a walk also waits
	// ten times as long as the last one took, so that walking never takes
	// more than a tenth of the time.
	diskMinAge = 30 * time.Second
	// diskWait is how long a scrape waits for a walk it started; a longer
	// walk ends on its own and the scrape gets the figures before it.
	diskWait = time.Second
)

// diskUsage measures the disk use of named parts, each a list of files and
// folders, as du -x does: allocated blocks, a file with several hard links
// once, and nothing of another file system mounted below (the mounts of
// running builds). It is safe for concurrent use.
type diskUsage struct {
	parts        map[string][]string
	minAge, wait time.Duration

	mu       sync.Mutex
	bytes    map[string]int64 // the last figures; nil before the first walk ends
	measured time.Time        // when the last walk ended
	took     time.Duration    // how long it took
	walking  chan struct{}    // closed when the walk under way ends; nil when none is
}

func newDiskUsage(parts map[string][]string, minAge, wait time.Duration) *diskUsage {
	return &diskUsage{parts: parts, minAge: minAge, wait: wait}
}

// current returns the figures of each part, walking again first when the
// last figures are old enough (waiting for that at most d.wait).
func (d *diskUsage) current() map[string]int64 {
	d.mu.Lock()
	if d.walking == nil && (d.bytes == nil || time.Since(d.measured) >= max(d.minAge, 10*d.took)) {
		d.walking = make(chan struct{})
		go d.walk(d.walking)
	}
	walking := d.walking
	d.mu.Unlock()
	if walking != nil {
		wait := time.NewTimer(d.wait)
		defer wait.Stop()
		select {
		case <-walking:
		case <-wait.C:
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.bytes)
}

// walk measures every part and keeps the figures, then closes done.
func (d *diskUsage) walk(done chan struct{}) {
	start := time.Now()
	bytes := make(map[string]int64, len(d.parts))
	for part, paths := range d.parts {
		bytes[part] = diskUsed(paths)
	}
	d.mu.Lock()
	d.bytes, d.measured, d.took, d.walking = bytes, time.Now(), time.Since(start), nil
	d.mu.Unlock()
	close(done)
}

// diskUsed is the space allocated to the files below paths. What cannot be
// read (a missing path, a folder of another user) counts for nothing.
func diskUsed(paths []string) int64 {
	var total int64
	linked := map[[2]uint64]bool{} // files with several links, by device and inode
	for _, root := range paths {
		var rootDev uint64
		filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			info, err := e.Info()
			if err != nil {
				return nil
			}
			st, ok := info.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			switch {
			case path == root:
				rootDev = uint64(st.Dev)
			case e.IsDir() && uint64(st.Dev) != rootDev:
				return fs.SkipDir
			case !e.IsDir() && st.Nlink > 1:
				key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
				if linked[key] {
					return nil
				}
				linked[key] = true
			}
			total += int64(st.Blocks) * 512
			return nil
		})
	}
	return total
}
