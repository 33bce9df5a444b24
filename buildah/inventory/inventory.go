// Package inventory reads which packages a built image holds from its root
// file system, without running anything of the image: dpkg's status file
// (apt), the metadata of Python's distributions in site-packages and
// dist-packages (pip), the records in conda-meta (conda). The image is not
// trusted, so the reading is bounded (Limits), follows no link out of the
// root file system, opens nothing but regular files and folders, and keeps
// only what store.Package.Validate accepts. It is pure Go and imports no
// buildah: the worker mounts the image and hands its root here.
package inventory

import (
	"errors"
	"fmt"
	"os"

	"imagehub/store"
)

// Limits bound what Read does with one image.
type Limits struct {
	// Packages is the most packages of a list; an image that holds more
	// has no list.
	Packages int
	// Entries is the most names of one folder that is listed.
	Entries int
	// Files and Bytes bound how many files are opened and how many bytes
	// read in all.
	Files int
	Bytes int64
	// FileSize is the largest file read whole: a bigger dpkg status file
	// is past the budget, a bigger conda-meta record is left out, and of a
	// Python distribution's metadata only the start is read (its headers
	// come first).
	FileSize int64
}

// DefaultLimits are far beyond any real image: a large data-science image
// holds a few thousand packages, a dpkg status file of a few MB, conda-meta
// records of up to a few MB each.
var DefaultLimits = Limits{
	Packages: store.MaxPackages,
	Entries:  100_000,
	Files:    250_000,
	Bytes:    1 << 30,
	FileSize: 64 << 20,
}

// maxNotes bounds the notes of one reading; further ones are counted.
const maxNotes = 20

// Result is what Read found.
type Result struct {
	// Packages are the installed packages, the first found of each
	// manager and name (see prefixes).
	Packages []store.Package
	// Notes say what was left out and why, for the build's log.
	Notes []string
	// Distributions are the metadata folders of the Python packages
	// listed (the .dist-info or .egg-info folder of each that has one):
	// where ImportNames reads what they install.
	Distributions []Distribution
}

// Distribution is where a Python package of a list keeps its metadata.
type Distribution struct {
	// Name is the package's name, as its metadata says.
	Name string
	// Dir is its .dist-info or .egg-info folder, a path in the image.
	Dir string
}

// Read reads the packages installed in the root file system at root (an
// absolute, clean path that is no link). Package managers the image does
// not have are no error. It fails when the image holds more than Limits
// allow, and returns no list then.
func Read(root string, lim Limits) (Result, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return Result{}, err
	}
	defer r.Close()
	rd := &reader{fs: rootFS{path: root, root: r, b: &budget{lim: lim}}, seen: map[key]bool{}}
	if err := rd.prefixes(); err != nil {
		return Result{}, err
	}
	if err := rd.dpkg(); err != nil {
		return Result{}, err
	}
	if rd.dropped > maxNotes {
		rd.res.Notes = append(rd.res.Notes, fmt.Sprintf("… and %d more left out", rd.dropped-maxNotes))
	}
	if rd.res.Packages == nil {
		rd.res.Packages = []store.Package{}
	}
	return rd.res, nil
}

// prefixes are where conda and Python install packages, in Python's order
// of precedence when an image has several: conda's usual homes, then
// /usr/local (pip's, and conda's when installed there), then /usr (the
// distribution's own Python packages).
var prefixes = []string{"/opt/conda", "/opt/miniconda3", "/opt/miniforge3", "/opt/mambaforge", "/opt/anaconda3", "/usr/local", "/usr"}

// prefixes reads the conda and Python packages of each prefix, once each
// (a prefix may be a link to another).
func (rd *reader) prefixes() error {
	done := map[string]bool{}
	for _, p := range prefixes {
		resolved, err := rd.fs.resolve(p)
		if err != nil || done[resolved] || !rd.fs.isDir(p) {
			continue
		}
		done[resolved] = true
		hasConda, err := rd.conda(p)
		if err != nil {
			return err
		}
		if err := rd.python(p, hasConda); err != nil {
			return err
		}
	}
	return nil
}

// key tells the packages of one list apart.
type key struct {
	manager store.PackageManager
	name    string
}

// reader is one reading of an image.
type reader struct {
	fs      rootFS
	res     Result
	seen    map[key]bool
	dropped int // notes made
}

// add keeps a package the image claims to hold: the first of its manager
// and name, when valid. where says where it was read, for the note of a
// package left out.
func (rd *reader) add(p store.Package, where string) error {
	if err := p.Validate(); err != nil {
		rd.note("%s: %s %.60q left out: %v", where, p.Manager, p.Name, store.ErrorFields(err))
		return nil
	}
	if rd.seen[key{p.Manager, p.Name}] {
		return nil
	}
	if len(rd.res.Packages) == rd.fs.b.lim.Packages {
		return &errBudget{fmt.Sprintf("more than %d packages", rd.fs.b.lim.Packages)}
	}
	rd.seen[key{p.Manager, p.Name}] = true
	rd.res.Packages = append(rd.res.Packages, p)
	return nil
}

// note records why something was left out.
func (rd *reader) note(format string, args ...any) {
	if rd.dropped++; rd.dropped <= maxNotes {
		rd.res.Notes = append(rd.res.Notes, fmt.Sprintf(format, args...))
	}
}

// skip decides what a failure to read one file means: past the budget, the
// reading stops (the error is returned); a missing file is nothing to say;
// anything else leaves the file out with a note.
func (rd *reader) skip(err error) error {
	var b *errBudget
	switch {
	case errors.As(err, &b):
		return err
	case errors.Is(err, os.ErrNotExist):
		return nil
	}
	rd.note("%s", err)
	return nil
}
