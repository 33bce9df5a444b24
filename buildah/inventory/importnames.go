package inventory

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
)

// MaxImportNames is the most import names ImportNames returns for one
// distribution; a real one installs a handful of top-level modules.
const MaxImportNames = 64

// maxTopLevel and maxRecord bound the two files ImportNames reads. A
// RECORD lists every file a distribution installed: a few MB for the
// largest (a deep learning framework's).
const (
	maxTopLevel = 64 << 10
	maxRecord   = 32 << 20
)

// ImportNames says which top-level modules the Python distribution whose
// metadata folder is dir (a Distribution's Dir) installs, so that a smoke
// test may import them: the lines of its top_level.txt, or, without one,
// the first part of each path its RECORD lists. Only names fit to be
// imported are kept (dotted Python identifiers in ASCII: never a path, an
// option or code); the notes say what was left out. A distribution with
// neither file has no names and a note.
func ImportNames(root, dir string, lim Limits) (names, notes []string, err error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	fs := rootFS{path: root, root: r, b: &budget{lim: lim}}
	var candidates []string
	data, err := fs.readFile(path.Join(dir, "top_level.txt"), min(maxTopLevel, lim.FileSize), false)
	switch {
	case err == nil:
		candidates = topLevelNames(data)
	case errors.Is(err, os.ErrNotExist):
		data, err = fs.readFile(path.Join(dir, "RECORD"), min(maxRecord, lim.FileSize), false)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, []string{fmt.Sprintf("%s has neither top_level.txt nor RECORD", dir)}, nil
		case errors.Is(err, errSkip):
			return nil, []string{err.Error()}, nil
		case err != nil:
			return nil, nil, err
		}
		candidates = recordNames(data)
	case errors.Is(err, errSkip):
		return nil, []string{err.Error()}, nil
	default:
		return nil, nil, err
	}
	for _, c := range candidates {
		switch {
		case !isImportName(c):
			notes = append(notes, fmt.Sprintf("%s: %.60q is no module name, not imported", dir, c))
		case slices.Contains(names, c):
		case len(names) == MaxImportNames:
			notes = append(notes, fmt.Sprintf("%s: more than %d modules, the first %d imported", dir, MaxImportNames, MaxImportNames))
			return names, notes, nil
		default:
			names = append(names, c)
		}
	}
	return names, notes, nil
}

// topLevelNames reads top_level.txt: a module a line. Old setuptools wrote
// nested packages with slashes ("google/protobuf").
func topLevelNames(data []byte) []string {
	var out []string
	for line := range bytes.Lines(data) {
		if s := strings.TrimSpace(string(line)); s != "" {
			out = append(out, strings.ReplaceAll(s, "/", "."))
		}
	}
	return out
}

// recordNames derives the top-level modules from a RECORD (CSV: path,
// hash, size; paths relative to site-packages): a path's first part when
// it is a folder ("yaml/__init__.py" → yaml), a module file's name without
// its suffixes ("six.py" → six, "_cffi_backend.cpython-311-x86_64-linux-
// gnu.so" → _cffi_backend). The metadata and data folders, caches, .pth
// files and paths that leave site-packages (scripts: "../../bin/x") are
// not modules.
func recordNames(data []byte) []string {
	rd := csv.NewReader(bytes.NewReader(data))
	rd.FieldsPerRecord = -1
	rd.LazyQuotes = true
	rd.ReuseRecord = true
	var out []string
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue // a bad line; the others still count
			}
			break
		}
		if len(rec) == 0 {
			continue
		}
		if name := recordModule(rec[0]); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// recordModule is the top-level module a RECORD path belongs to, or "".
func recordModule(p string) string {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return ""
	}
	first, rest, nested := strings.Cut(p, "/")
	switch {
	case first == "" || first == "." || first == ".." || first == "__pycache__",
		strings.HasSuffix(first, ".dist-info"), strings.HasSuffix(first, ".data"), strings.HasSuffix(first, ".egg-info"):
		return ""
	case nested:
		if rest == "" {
			return ""
		}
		return first
	case strings.HasSuffix(first, ".py"):
		return strings.TrimSuffix(first, ".py")
	case strings.HasSuffix(first, ".so"), strings.HasSuffix(first, ".pyd"):
		name, _, _ := strings.Cut(first, ".")
		return name
	}
	return ""
}

// isImportName reports whether s is a module name that import statements
// accept, in ASCII: identifiers joined by dots. Nothing else reaches the
// image's Python.
func isImportName(s string) bool {
	if len(s) == 0 || len(s) > 200 {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" || isDigitByte(part[0]) {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !(c == '_' || isDigitByte(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

func isDigitByte(c byte) bool { return '0' <= c && c <= '9' }
