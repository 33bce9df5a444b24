package store

import (
	"context"
	"path/filepath"
	"testing"
)

// openInternal opens a store in a folder of the test's own, closed when
// the test ends, and returns it with its file's path: what the tests
// inside the package start from.
func openInternal(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "imagehub.db")
	s, err := Open(path, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// must stops the test at an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// createSci creates the global custom image "sci" and returns its recipe.
func createSci(t *testing.T, s *Store) Recipe {
	t.Helper()
	r := Recipe{BaseImage: "r/base:1"}
	must(t, s.CreateImage(context.Background(), &Image{DisplayName: "sci", Type: TypeCPU, Global: true, Recipe: &r}))
	return r
}
