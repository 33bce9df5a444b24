package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"imagehub/buildah/disk"
	"imagehub/store"
	"imagehub/views"
)

// diskPage shows what imagehub keeps on disk (disk.Keeper.Report), with
// the button that asks for a garbage collection.
func (s *Server) diskPage(c echo.Context) error {
	p := views.DiskProps{Page: s.page(c, "Disk", views.NavDisk)}
	if s.builds != nil {
		p.Waiting = s.builds.Waiting()
	}
	if s.disk != nil {
		r, err := s.disk.Report(c.Request().Context())
		if err != nil {
			return err
		}
		p.Report = diskReportProps(r)
	}
	return render(c, http.StatusOK, views.Disk(p))
}

// diskReportProps is a report as the page shows it.
func diskReportProps(r disk.Report) *views.DiskReport {
	p := &views.DiskReport{
		Registry: r.Registry, Cache: r.Cache, Logs: r.Logs, Free: r.Free, CacheImages: r.CacheImages, CacheError: r.CacheError, MeasuredAt: r.MeasuredAt,
		Embedded: r.Embedded, ReclaimableBlobs: r.Reclaimable.Blobs, Reclaimable: r.Reclaimable.Bytes, ReclaimableError: r.ReclaimableError,
		KeepBuilds: r.KeepBuilds, CacheSize: r.CacheSize, MinFreeDisk: r.MinFreeDisk, GCInterval: r.GCInterval,
	}
	if g := r.LastGC; g != nil {
		p.LastGC = &views.DiskGC{At: g.At, Took: g.Took, Blobs: g.Result.Blobs, Bytes: g.Result.Bytes, Error: g.Error}
	}
	return p
}

// collectGarbageForm is the disk page's button: it asks for the embedded
// registry's garbage collection, which runs from the queue.
func (s *Server) collectGarbageForm(c echo.Context) error {
	if err := s.collectGarbage(); err != nil {
		return err
	}
	s.addFlash(c, "Garbage collection asked for: it runs as soon as no build is running, and queued builds wait for it.")
	return seeOther(c, "/admin/disk")
}

// apiCollectGarbage asks for the embedded registry's garbage collection:
// 202, and GET /api/v1/disk tells its result once it ran.
func (s *Server) apiCollectGarbage(c echo.Context) error {
	if err := s.collectGarbage(); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"status": "queued"})
}

func (s *Server) collectGarbage() error {
	if s.disk == nil {
		return store.Errorf(store.ECONFLICT, "This imagehub keeps no watch on its disk.")
	}
	return s.disk.CollectGarbage()
}

// apiDisk is GET /api/v1/disk: what imagehub keeps on disk, in bytes.
type apiDisk struct {
	RegistryBytes    int64      `json:"registryBytes"`
	CacheBytes       int64      `json:"cacheBytes"`
	CacheImages      int        `json:"cacheImages"`
	CacheError       string     `json:"cacheError,omitempty"`
	MeasuredAt       time.Time  `json:"measuredAt"`
	LogsBytes        int64      `json:"logsBytes"`
	FreeBytes        int64      `json:"freeBytes"`
	EmbeddedRegistry bool       `json:"embeddedRegistry"`
	Reclaimable      *apiGCSize `json:"reclaimable,omitempty"`
	ReclaimableError string     `json:"reclaimableError,omitempty"`
	LastGC           *apiGCRun  `json:"lastGc,omitempty"`
	KeepBuilds       int        `json:"keepBuilds"`
	CacheSizeBytes   int64      `json:"cacheSizeBytes"`
	MinFreeDiskBytes int64      `json:"minFreeDiskBytes"`
	GCIntervalSecs   float64    `json:"gcIntervalSeconds"`
	Waiting          string     `json:"waiting,omitempty"`
}

// apiGCSize is what a garbage collection frees.
type apiGCSize struct {
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

// apiGCRun is one garbage collection.
type apiGCRun struct {
	At          time.Time `json:"at"`
	TookSeconds float64   `json:"tookSeconds"`
	Freed       apiGCSize `json:"freed"`
	Error       string    `json:"error,omitempty"`
}

// apiGetDisk answers the disk report.
func (s *Server) apiGetDisk(c echo.Context) error {
	if s.disk == nil {
		return store.Errorf(store.ENOTFOUND, "This imagehub keeps no watch on its disk.")
	}
	r, err := s.disk.Report(c.Request().Context())
	if err != nil {
		return err
	}
	out := apiDisk{
		RegistryBytes: r.Registry, CacheBytes: r.Cache, CacheImages: r.CacheImages, CacheError: r.CacheError, MeasuredAt: r.MeasuredAt,
		LogsBytes: r.Logs, FreeBytes: r.Free, EmbeddedRegistry: r.Embedded, ReclaimableError: r.ReclaimableError,
		KeepBuilds: r.KeepBuilds, CacheSizeBytes: r.CacheSize, MinFreeDiskBytes: r.MinFreeDisk, GCIntervalSecs: r.GCInterval.Seconds(),
	}
	if r.Embedded && r.ReclaimableError == "" {
		out.Reclaimable = &apiGCSize{Blobs: r.Reclaimable.Blobs, Bytes: r.Reclaimable.Bytes}
	}
	if g := r.LastGC; g != nil {
		out.LastGC = &apiGCRun{At: g.At, TookSeconds: g.Took.Seconds(), Freed: apiGCSize{Blobs: g.Result.Blobs, Bytes: g.Result.Bytes}, Error: g.Error}
	}
	if s.builds != nil {
		out.Waiting = s.builds.Waiting()
	}
	return c.JSON(http.StatusOK, out)
}
