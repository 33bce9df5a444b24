package inventory

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestImportNames derives the modules to import from top_level.txt, or
// from RECORD without one, as real distributions lay them out.
func TestImportNames(t *testing.T) {
	const site = "/usr/local/lib/python3.11/site-packages"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
		notes int
	}{{
		name:  "top_level.txt",
		files: map[string]string{"top_level.txt": "_yaml\nyaml\n\n  \r\nyaml\n"},
		want:  []string{"_yaml", "yaml"},
	}, {
		name:  "nested packages in an old top_level.txt",
		files: map[string]string{"top_level.txt": "google/protobuf\n"},
		want:  []string{"google.protobuf"},
	}, {
		name: "RECORD without top_level.txt",
		files: map[string]string{"RECORD": "imagehub_probe/__init__.py,sha256=abc,20\n" +
			"imagehub_probe/sub/x.py,,\n" +
			"six.py,sha256=x,1\n" +
			"_cffi_backend.cpython-311-x86_64-linux-gnu.so,sha256=y,2\n" +
			"\"quoted,dir/__init__.py\",,\n" +
			"imagehub_probe-1.0.dist-info/METADATA,,\n" +
			"imagehub_probe-1.0.data/scripts/x,,\n" +
			"__pycache__/six.cpython-311.pyc,,\n" +
			"../../../bin/probe,,\n" +
			"/etc/passwd,,\n" +
			"distutils-precedence.pth,,\n" +
			"README,,\n"},
		want:  []string{"imagehub_probe", "six", "_cffi_backend"},
		notes: 1, // "quoted,dir"
	}, {
		name: "hostile names never pass",
		files: map[string]string{"top_level.txt": "../../etc/passwd\n/abs\n-c\nos; import shutil\n" +
			"a b\n$(touch x)\n'q'\nnäme\n1abc\nok.\n.ok\nx\x00y\n" + strings.Repeat("a", 201) + "\ngood_1.sub\n"},
		want:  []string{"good_1.sub"},
		notes: 13,
	}, {
		name:  "neither file",
		files: map[string]string{"METADATA": "Name: x\n"},
		notes: 1,
	}, {
		name:  "a top_level.txt that is a link out of the image reads inside it",
		files: map[string]string{"top_level.txt": "->/../../../../outside"},
		notes: 1, // the link resolves in the image, where nothing is
	}} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t)
			dir := site + "/x-1.0.dist-info"
			fs := map[string]string{}
			for name, content := range tc.files {
				fs[dir+"/"+name] = content
			}
			files(t, root, fs)
			os.WriteFile(filepath.Join(filepath.Dir(root), "outside"), []byte("escaped\n"), 0o644)
			got, notes, err := ImportNames(root, dir, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) || len(notes) != tc.notes {
				t.Errorf("ImportNames = %q, notes %q; want %q and %d notes", got, notes, tc.want, tc.notes)
			}
		})
	}
}

// TestImportNamesBounded: a top_level.txt that is a pipe is never opened,
// one too big is not read, and at most MaxImportNames names come back.
func TestImportNamesBounded(t *testing.T) {
	root := newRoot(t)
	dir := "/usr/lib/python3/dist-packages/x-1.0.egg-info"
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, dir, "top_level.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, notes, err := ImportNames(root, dir, DefaultLimits); err != nil || len(got) != 0 || len(notes) != 1 {
		t.Errorf("a pipe: %q, %q, %v; want no names and a note", got, notes, err)
	}

	os.Remove(filepath.Join(root, dir, "top_level.txt"))
	var many strings.Builder
	for i := range MaxImportNames + 10 {
		many.WriteString("m" + strings.Repeat("x", i) + "\n")
	}
	files(t, root, map[string]string{dir + "/top_level.txt": many.String()})
	got, notes, err := ImportNames(root, dir, DefaultLimits)
	if err != nil || len(got) != MaxImportNames || len(notes) != 1 {
		t.Errorf("many names: %d names, notes %q, %v; want %d and a note", len(got), notes, err, MaxImportNames)
	}
	small := DefaultLimits
	small.FileSize = 100
	if got, notes, err := ImportNames(root, dir, small); err != nil || len(got) != 0 || len(notes) != 1 {
		t.Errorf("a file over the limit: %q, %q, %v; want no names and a note", got, notes, err)
	}
}

// TestLookPath finds python3 as the image's shell would, through links
// that stay in the image, never through one that leads out.
func TestLookPath(t *testing.T) {
	root := newRoot(t)
	files(t, root, map[string]string{
		"/usr/bin/python3.11":     "#!",
		"/usr/bin/python3":        "->python3.11",
		"/opt/conda/bin/python3":  "->/usr/bin/python3",
		"/bad/bin/python3":        "->../../../../../usr/bin/python3.11",
		"/noexec/bin/python3":     "x",
		"/escape/bin/python3":     "->/../../outside-python3",
		"/usr/local/bin/python3x": "#!",
	})
	if err := os.Chmod(filepath.Join(root, "usr/bin/python3.11"), 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(filepath.Dir(root), "outside-python3")
	os.WriteFile(outside, []byte("#!"), 0o755)
	for _, tc := range []struct{ pathEnv, want string }{
		{"/usr/local/bin:/usr/bin:/bin", "/usr/bin/python3"},
		{"/opt/conda/bin:/usr/bin", "/opt/conda/bin/python3"},
		{"/bad/bin", "/bad/bin/python3"}, // ".." stops at the image's root
		{"/noexec/bin:/escape/bin", ""},
		{"bin:usr/bin:", ""},
		{"", ""},
	} {
		got, err := LookPath(root, tc.pathEnv, "python3")
		if err != nil || got != tc.want {
			t.Errorf("LookPath(%q) = %q, %v; want %q", tc.pathEnv, got, err, tc.want)
		}
	}
	if _, err := LookPath(root, "/usr/bin", "../bin/python3"); err == nil {
		t.Error("a file name with a slash was looked up")
	}
}
