package inventory

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// rootFS reads files of an image's root file system, which it treats as
// hostile: a path is resolved as if the root were "/" (a symbolic link,
// absolute or not, never leads out of it: securejoin), then opened through an
// os.Root, which refuses whatever would still escape (a link changed in
// between). Only regular files are read (never a pipe or a device, which
// could block or never end) and only folders listed, each within the
// reader's budget.
type rootFS struct {
	path string
	root *os.Root
	b    *budget
}

// errBudget is the error of a reader past one of its Limits: the image is
// not read any further.
type errBudget struct{ what string }

func (e *errBudget) Error() string { return e.what }

// errSkip marks a file that is left out: too big, not a regular file. The
// reading goes on without it.
var errSkip = errors.New("skipped")

// budget is what a reader may still do.
type budget struct {
	lim   Limits
	files int
	bytes int64
}

// open counts the opening of one more file.
func (b *budget) open() error {
	if b.files++; b.files > b.lim.Files {
		return &errBudget{fmt.Sprintf("more than %d files to read", b.lim.Files)}
	}
	return nil
}

// read counts n more bytes read.
func (b *budget) read(n int) error {
	if b.bytes += int64(n); b.bytes > b.lim.Bytes {
		return &errBudget{fmt.Sprintf("more than %d bytes to read", b.lim.Bytes)}
	}
	return nil
}

// resolve returns name (absolute, as in the image) resolved inside the root,
// relative to it.
func (r *rootFS) resolve(name string) (string, error) {
	full, err := securejoin.SecureJoin(r.path, name)
	if err != nil {
		return "", pathError(name, err)
	}
	rel, err := filepath.Rel(r.path, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s resolves outside the image", name)
	}
	return rel, nil
}

// openAs opens name, which must be a folder (dir) or a regular file:
// anything else is errSkip, and is never opened (opening a device may do
// something, opening a named pipe may wait).
func (r *rootFS) openAs(name string, dir bool) (*os.File, error) {
	rel, err := r.resolve(name)
	if err != nil {
		return nil, err
	}
	st, err := r.root.Lstat(rel)
	if err != nil {
		return nil, pathError(name, err)
	}
	if !kindOK(st, dir) {
		return nil, fmt.Errorf("%s: %w: not a regular file or folder (%s)", name, errSkip, st.Mode().Type())
	}
	if err := r.b.open(); err != nil {
		return nil, err
	}
	// O_NOFOLLOW and O_NONBLOCK, should the file have changed since: no
	// link is followed, no pipe waited for.
	f, err := r.root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, pathError(name, err)
	}
	if st, err = f.Stat(); err != nil || !kindOK(st, dir) {
		f.Close()
		return nil, fmt.Errorf("%s: %w: changed while it was read", name, errSkip)
	}
	return f, nil
}

// pathError is err about name, a path in the image, without the path of
// the image's root on the host, which the build's log has no need of.
func pathError(name string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// kindOK reports whether a file is a folder (dir) or a regular file.
func kindOK(st os.FileInfo, dir bool) bool {
	if dir {
		return st.IsDir()
	}
	return st.Mode().IsRegular()
}

// isDir reports whether name is a folder.
func (r *rootFS) isDir(name string) bool {
	rel, err := r.resolve(name)
	if err != nil {
		return false
	}
	st, err := r.root.Lstat(rel)
	return err == nil && st.IsDir()
}

// readFile reads a regular file of at most max bytes; a bigger one is
// errSkip. With head set, a bigger file is read up to max bytes instead.
func (r *rootFS) readFile(name string, max int64, head bool) ([]byte, error) {
	f, err := r.openAs(name, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil {
		err = r.b.read(len(data))
	}
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		if !head {
			return nil, fmt.Errorf("%s: %w: larger than %d bytes", name, errSkip, max)
		}
		data = data[:max]
	}
	return data, nil
}

// reader returns f's content, at most Limits.FileSize bytes of it, charged
// to the budget as it is read.
func (r *rootFS) reader(f *os.File) io.Reader {
	return &chargedReader{r: io.LimitReader(f, r.b.lim.FileSize), b: r.b}
}

// chargedReader counts what it reads against a budget.
type chargedReader struct {
	r io.Reader
	b *budget
}

func (c *chargedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if berr := c.b.read(n); berr != nil {
		return n, berr
	}
	return n, err
}

// readDir returns the names in a folder, sorted; a folder of more than
// Limits.Entries names is past the budget.
func (r *rootFS) readDir(name string) ([]string, error) {
	f, err := r.openAs(name, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(r.b.lim.Entries + 1)
	if err != nil && err != io.EOF {
		return nil, pathError(name, err)
	}
	if len(names) > r.b.lim.Entries {
		return nil, &errBudget{fmt.Sprintf("%s holds more than %d names", name, r.b.lim.Entries)}
	}
	slices.Sort(names)
	return names, nil
}
