package inventory

import (
	"bytes"
	"path"
	"strings"

	"imagehub/store"
)

// maxMetadataHead is how much of a Python distribution's metadata is read:
// its headers come first, a long description (sometimes a whole README)
// after them.
const maxMetadataHead = 1 << 20

// python reads the Python distributions installed under a prefix: the
// *.dist-info and *.egg-info entries of its lib/python3*/site-packages and
// dist-packages folders, named and versioned by their metadata's Name and
// Version. Under a conda prefix, the distributions conda installed
// (INSTALLER "conda") are left to conda's list.
func (rd *reader) python(prefix string, condaPrefix bool) error {
	lib := path.Join(prefix, "lib")
	if !rd.fs.isDir(lib) {
		return nil
	}
	names, err := rd.fs.readDir(lib)
	if err != nil {
		return rd.skip(err)
	}
	for _, name := range names {
		if !strings.HasPrefix(name, "python3") {
			continue
		}
		for _, sub := range []string{"site-packages", "dist-packages"} {
			if err := rd.siteDir(path.Join(lib, name, sub), condaPrefix); err != nil {
				return err
			}
		}
	}
	return nil
}

// siteDir reads the distributions of one site-packages folder.
func (rd *reader) siteDir(dir string, condaPrefix bool) error {
	if !rd.fs.isDir(dir) {
		return nil
	}
	entries, err := rd.fs.readDir(dir)
	if err != nil {
		return rd.skip(err)
	}
	for _, e := range entries {
		var meta string
		switch entry := path.Join(dir, e); {
		case strings.HasSuffix(e, ".dist-info"):
			meta = path.Join(entry, "METADATA")
			if condaPrefix && rd.installedByConda(entry) {
				continue
			}
		case strings.HasSuffix(e, ".egg-info") && rd.fs.isDir(entry):
			meta = path.Join(entry, "PKG-INFO")
		case strings.HasSuffix(e, ".egg-info"):
			meta = entry
		default:
			continue
		}
		if err := rd.distribution(meta); err != nil {
			return err
		}
	}
	return nil
}

// installedByConda reports whether conda installed a distribution, as its
// INSTALLER file says.
func (rd *reader) installedByConda(distInfo string) bool {
	data, err := rd.fs.readFile(path.Join(distInfo, "INSTALLER"), 64, true)
	return err == nil && string(bytes.TrimSpace(data)) == "conda"
}

// distribution adds the distribution whose metadata file is meta.
func (rd *reader) distribution(meta string) error {
	data, err := rd.fs.readFile(meta, min(maxMetadataHead, rd.fs.b.lim.FileSize), true)
	if err != nil {
		return rd.skip(err)
	}
	name, version := metadataNameVersion(data)
	p := store.Package{Manager: store.ManagerPip, Name: name, Version: version}
	first := !rd.seen[key{p.Manager, p.Name}]
	if err := rd.add(p, meta); err != nil {
		return err
	}
	kept := first && rd.seen[key{p.Manager, p.Name}]
	if base := path.Base(meta); kept && (base == "METADATA" || base == "PKG-INFO") { // a folder, not a lone .egg-info file
		rd.res.Distributions = append(rd.res.Distributions, Distribution{Name: name, Dir: path.Dir(meta)})
	}
	return nil
}

// metadataNameVersion reads the Name and Version headers of Python's core
// metadata (RFC 822 style headers, up to the first empty line).
func metadataNameVersion(data []byte) (name, version string) {
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case name == "" && strings.EqualFold(string(k), "Name"):
			name = string(bytes.TrimSpace(v))
		case version == "" && strings.EqualFold(string(k), "Version"):
			version = string(bytes.TrimSpace(v))
		}
	}
	return name, version
}
