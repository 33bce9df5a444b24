package inventory

import (
	"encoding/json"
	"path"
	"strings"

	"imagehub/store"
)

// conda reads the packages conda installed in a prefix, a record each in
// its conda-meta folder, and reports whether the prefix has one.
func (rd *reader) conda(prefix string) (bool, error) {
	dir := path.Join(prefix, "conda-meta")
	if !rd.fs.isDir(dir) {
		return false, nil
	}
	names, err := rd.fs.readDir(dir)
	if err != nil {
		return true, rd.skip(err)
	}
	for _, name := range names {
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		file := path.Join(dir, name)
		data, err := rd.fs.readFile(file, rd.fs.b.lim.FileSize, false)
		if err != nil {
			if err := rd.skip(err); err != nil {
				return true, err
			}
			continue
		}
		var rec struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			rd.note("%s: not a conda record: %v", file, err)
			continue
		}
		if err := rd.add(store.Package{Manager: store.ManagerConda, Name: rec.Name, Version: rec.Version}, file); err != nil {
			return true, err
		}
	}
	return true, nil
}
