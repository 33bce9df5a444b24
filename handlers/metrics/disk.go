package metrics

import (
	"maps"
	"sync"
	"time"

	"imagehub/buildah/mounts"
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

// diskUsed is the space allocated to the files below paths
// (mounts.DiskUsage). What cannot be read (a missing path, a folder of
// another user) counts for nothing.
func diskUsed(paths []string) int64 {
	var total int64
	for _, p := range paths {
		n, _ := mounts.DiskUsage(p)
		total += n
	}
	return total
}
