package inventory

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// LookPath finds an executable in an image's root file system as a shell
// of the image would: the first folder of pathEnv (a PATH value) that holds
// an executable regular file of that name, links followed inside the image
// only. It returns the path in the image (pathEnv's folder joined with
// file), or "" when there is none. Relative folders are never searched.
func LookPath(root, pathEnv, file string) (string, error) {
	if file == "" || strings.Contains(file, "/") {
		return "", fmt.Errorf("%q is no file name", file)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", err
	}
	defer r.Close()
	fs := rootFS{path: root, root: r, b: &budget{lim: DefaultLimits}}
	for dir := range strings.SplitSeq(pathEnv, ":") {
		if !path.IsAbs(dir) {
			continue
		}
		full := path.Join(dir, file)
		rel, err := fs.resolve(full)
		if err != nil {
			continue
		}
		if st, err := r.Lstat(rel); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return full, nil
		}
	}
	return "", nil
}
