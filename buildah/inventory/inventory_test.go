package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"imagehub/store"
)

// files writes a root file system: path in the image → content; a content
// starting with "->" makes a symbolic link to the rest.
func files(t *testing.T, root string, fs map[string]string) {
	t.Helper()
	for name, content := range fs {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// newRoot makes an empty root file system and returns its path.
func newRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// stanza is one package of a dpkg status file.
func stanza(name, version, status string) string {
	return fmt.Sprintf("Package: %s\nStatus: %s\nPriority: optional\nVersion: %s\nDescription: the %s package\n long description\n .\n more\n\n",
		name, status, version, name)
}

// read runs Read with a deadline, so that a reading that blocks (on a pipe,
// say) fails instead of hanging the tests.
func read(t *testing.T, root string, lim Limits) (Result, error) {
	t.Helper()
	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := Read(root, lim)
		done <- out{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-time.After(20 * time.Second):
		t.Fatal("Read did not return")
	}
	return Result{}, nil
}

func names(ps []store.Package) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p.Manager)+":"+p.Name+"="+p.Version)
	}
	slices.Sort(out)
	return out
}

// TestReadAnImage reads dpkg, pip and conda packages as they lie in real
// images: installed and removed dpkg packages, a second architecture, the
// same Python distribution in /usr/local and /usr (the first wins), egg-info
// files and folders, and conda's own distributions left to conda.
func TestReadAnImage(t *testing.T) {
	root := newRoot(t)
	files(t, root, map[string]string{
		"/var/lib/dpkg/status": stanza("jq", "1.6-2.1+deb12u1", "install ok installed") +
			stanza("vim", "2:9.0", "deinstall ok config-files") +
			stanza("bash", "5.2.15-2+b2", "hold ok installed") +
			"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n" +
			"Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9\n\n" +
			stanza("half", "1", "install reinstreq half-installed") +
			// The last stanza needs no blank line after it.
			"Package: zlib1g\r\nStatus: install ok installed\r\nVersion: 1:1.2.13\r\n",
		"/usr/local/lib/python3.11/dist-packages/PyYAML-6.0.2.dist-info/METADATA":  "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.2\n\nName: NotThis\n",
		"/usr/lib/python3/dist-packages/PyYAML-6.0.egg-info/PKG-INFO":              "Metadata-Version: 1.1\nName: PyYAML\nVersion: 6.0\n",
		"/usr/lib/python3/dist-packages/six-1.16.0.egg-info":                       "Metadata-Version: 1.1\nname: six\nversion: 1.16.0\n",
		"/usr/lib/python3/dist-packages/yaml/__init__.py":                          "",
		"/opt/conda/conda-meta/numpy-1.26.4-py311h_0.json":                         `{"build":"py311h_0","files":["a","b"],"name":"numpy","version":"1.26.4"}`,
		"/opt/conda/conda-meta/history":                                            "==> 2024 <==\n",
		"/opt/conda/lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA":  "Name: numpy\nVersion: 1.26.4\n",
		"/opt/conda/lib/python3.11/site-packages/numpy-1.26.4.dist-info/INSTALLER": "conda\n",
		"/opt/conda/lib/python3.11/site-packages/rich-13.0.dist-info/METADATA":     "Name: rich\nVersion: 13.0\n",
		"/opt/conda/lib/python3.11/site-packages/rich-13.0.dist-info/INSTALLER":    "pip\n",
		// A link to a prefix read already is read once.
		"/opt/miniconda3": "->/opt/conda",
	})
	res, err := read(t, root, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"apt:bash=5.2.15-2+b2", "apt:jq=1.6-2.1+deb12u1", "apt:libc6:i386=2.36-9", "apt:libc6=2.36-9", "apt:zlib1g=1:1.2.13",
		"conda:numpy=1.26.4", "pip:PyYAML=6.0.2", "pip:rich=13.0", "pip:six=1.16.0",
	}
	if got := names(res.Packages); !slices.Equal(got, want) {
		t.Errorf("packages:\n got %v\nwant %v", got, want)
	}
	if len(res.Notes) != 0 {
		t.Errorf("notes: %v", res.Notes)
	}
	// The metadata folders of the packages listed, the first of each name:
	// no lone .egg-info file, no folder of conda's.
	wantDists := []Distribution{
		{"rich", "/opt/conda/lib/python3.11/site-packages/rich-13.0.dist-info"},
		{"PyYAML", "/usr/local/lib/python3.11/dist-packages/PyYAML-6.0.2.dist-info"},
	}
	if !slices.Equal(res.Distributions, wantDists) {
		t.Errorf("distributions:\n got %v\nwant %v", res.Distributions, wantDists)
	}
}

// TestReadAnImageWithoutPackageManagers: none is no error, and a list.
func TestReadAnImageWithoutPackageManagers(t *testing.T) {
	root := newRoot(t)
	files(t, root, map[string]string{"/bin/busybox": "", "/usr/lib/libc.so": ""})
	res, err := read(t, root, DefaultLimits)
	if err != nil || res.Packages == nil || len(res.Packages) != 0 {
		t.Errorf("Read: %+v, %v; want an empty list", res, err)
	}
}

// TestReadFollowsNoLinkOut: links that lead out of the root file system,
// absolute or relative, to files or to folders, are resolved inside it,
// where there is nothing; a loop of links is left out.
func TestReadFollowsNoLinkOut(t *testing.T) {
	root := newRoot(t)
	outside := filepath.Join(filepath.Dir(root), "host")
	files(t, outside, map[string]string{
		"/status":                                         stanza("host-secret", "1", "install ok installed"),
		"/site/secret-1.0.dist-info/METADATA":             "Name: host-secret\nVersion: 1\n",
		"/meta/secret-1-0.json":                           `{"name":"host-secret","version":"1"}`,
		"/py/site-packages/secret-1.0.dist-info/METADATA": "Name: host-secret-py\nVersion: 1\n",
		"/dpkg/status":                                    stanza("host-secret-dpkg", "1", "install ok installed"),
	})
	files(t, root, map[string]string{
		"/var/lib/dpkg.old/status":                "->" + filepath.Join(outside, "status"),
		"/usr/local/lib/python3.11/dist-packages": "->../../../../../host/site",
		"/usr/lib/python3/dist-packages":          "->" + filepath.Join(outside, "site"),
		"/opt/conda/conda-meta":                   "->../../../host/meta",
		// Links in the middle of a path.
		"/usr/lib/python3.12":                  "->" + filepath.Join(outside, "py"),
		"/usr/local/lib/python3.12":            "->../../../../host/py",
		"/var/lib/dpkg":                        "->../../../host/dpkg",
		"/opt/miniforge3":                      "->/opt/miniforge3/loop",
		"/opt/anaconda3/conda-meta/x-1-0.json": "->/opt/anaconda3/conda-meta/x-1-0.json",
	})
	res, err := read(t, root, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 0 {
		t.Errorf("packages read through links out of the image: %v", names(res.Packages))
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "x-1-0.json") }) {
		t.Errorf("the loop of links is not in the notes: %v", res.Notes)
	}
	// The notes go to the build's log: paths in the image, not on the host.
	if slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, root) }) {
		t.Errorf("a note names the image's folder on the host: %q", res.Notes)
	}
}

// TestReadOpensOnlyRegularFiles: a named pipe (which would block a reader)
// or a device as dpkg's status file, or as a conda record, is left out
// with a note.
func TestReadOpensOnlyRegularFiles(t *testing.T) {
	root := newRoot(t)
	files(t, root, map[string]string{"/opt/conda/conda-meta/ok-1-0.json": `{"name":"ok","version":"1"}`})
	for _, p := range []string{"/var/lib/dpkg/status", "/opt/conda/conda-meta/pipe-1-0.json"} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := syscall.Mkfifo(filepath.Join(root, p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		// /dev/watchdog: opening it arms the machine's watchdog.
		dev := filepath.Join(root, "opt/conda/conda-meta/watchdog-1-0.json")
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o600, int(10<<8|130)); err != nil {
			t.Logf("no device node: %v", err)
		}
	}
	res, err := read(t, root, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(res.Packages); !slices.Equal(got, []string{"conda:ok=1"}) {
		t.Errorf("packages %v, want conda:ok=1 only", got)
	}
	for _, want := range []string{"status", "pipe-1-0.json"} {
		if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, want) && strings.Contains(n, "not a regular file") }) {
			t.Errorf("no note that %s is not a regular file: %v", want, res.Notes)
		}
	}
}

// TestReadLeavesOutBadPackages: names and versions that are not valid
// UTF-8, hold control characters or spaces, or are too long, are left out
// with a note; an overlong line of the status file is skipped and the
// stanzas after it are read.
func TestReadLeavesOutBadPackages(t *testing.T) {
	root := newRoot(t)
	long := strings.Repeat("x", store.MaxPackageFieldLen+1)
	files(t, root, map[string]string{
		"/var/lib/dpkg/status": stanza("bad\xffutf8", "1", "install ok installed") +
			stanza("ctl", "1\x1b[31m", "install ok installed") +
			stanza("long", long, "install ok installed") +
			"Package: huge\nDescription: " + strings.Repeat("d", 200<<10) + "\nStatus: install ok installed\nVersion: 1\n\n" +
			stanza("jq", "1.6", "install ok installed"),
		"/usr/local/lib/python3.11/dist-packages/noversion-1.dist-info/METADATA": "Name: noversion\n",
		"/usr/local/lib/python3.11/dist-packages/spaced-1.dist-info/METADATA":    "Name: has space\nVersion: 1\n",
		"/opt/conda/conda-meta/broken-1-0.json":                                  `{"name": "broken", "version": `,
	})
	res, err := read(t, root, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(res.Packages), []string{"apt:huge=1", "apt:jq=1.6"}; !slices.Equal(got, want) {
		t.Errorf("packages %v, want %v", got, want)
	}
	if len(res.Notes) != 6 {
		t.Errorf("%d notes, want one for each of the 6 bad packages: %q", len(res.Notes), res.Notes)
	}
}

// TestReadBounds: an image past any of the limits has no list (an error),
// quickly; a file past the size limit is left out or cuts the reading.
func TestReadBounds(t *testing.T) {
	small := Limits{Packages: 10, Entries: 50, Files: 100, Bytes: 512 << 10, FileSize: 64 << 10}
	many := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(stanza(fmt.Sprintf("p%d", i), "1", "install ok installed"))
		}
		return b.String()
	}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, root string)
		want  string // in the error; "" for a list
		notes string // in the notes
	}{
		{"packages", func(t *testing.T, root string) {
			files(t, root, map[string]string{"/var/lib/dpkg/status": many(11)})
		}, "more than 10 packages", ""},
		{"just enough packages", func(t *testing.T, root string) {
			files(t, root, map[string]string{"/var/lib/dpkg/status": many(10)})
		}, "", ""},
		{"a huge status file", func(t *testing.T, root string) {
			files(t, root, map[string]string{"/var/lib/dpkg/status": many(2)})
			if err := os.Truncate(filepath.Join(root, dpkgStatus), 1<<40); err != nil {
				t.Fatal(err)
			}
		}, "larger than 65536 bytes", ""},
		{"a folder of too many names", func(t *testing.T, root string) {
			dir := filepath.Join(root, "usr/local/lib/python3.11/site-packages")
			os.MkdirAll(dir, 0o755)
			for i := range 51 {
				os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%d.py", i)), nil, 0o644)
			}
		}, "more than 50 names", ""},
		{"too many files", func(t *testing.T, root string) {
			fs := map[string]string{}
			for i := range 40 {
				fs[fmt.Sprintf("/usr/lib/python3.%d/site-packages/p%d.dist-info/METADATA", i, i)] = "Name: p\nVersion: 1\n"
				fs[fmt.Sprintf("/usr/lib/python3.%d/dist-packages/q%d.dist-info/METADATA", i, i)] = "Name: q\nVersion: 1\n"
			}
			files(t, root, fs)
		}, "more than 100 files", ""},
		{"too many bytes", func(t *testing.T, root string) {
			fs := map[string]string{}
			for i := range 10 {
				fs[fmt.Sprintf("/opt/conda/conda-meta/p%d-1-0.json", i)] = fmt.Sprintf(`{"name":"p%d","version":"1","files":[%q]}`, i, strings.Repeat("f", 60<<10))
			}
			files(t, root, fs)
		}, "more than 524288 bytes", ""},
		{"a huge conda record", func(t *testing.T, root string) {
			files(t, root, map[string]string{
				"/opt/conda/conda-meta/big-1-0.json": `{"name":"big","version":"1","files":["` + strings.Repeat("f", 70<<10) + `"]}`,
				"/opt/conda/conda-meta/ok-1-0.json":  `{"name":"ok","version":"1"}`,
			})
		}, "", "larger than 65536 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := newRoot(t)
			c.setup(t, root)
			res, err := read(t, root, small)
			switch {
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Read: %v (%d packages), want an error saying %q", err, len(res.Packages), c.want)
			case c.want == "" && err != nil:
				t.Errorf("Read: %v", err)
			case c.notes != "" && !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, c.notes) }):
				t.Errorf("notes %q, want one saying %q", res.Notes, c.notes)
			}
		})
	}
}

// TestMetadataNameVersion reads the headers only, whatever their case.
func TestMetadataNameVersion(t *testing.T) {
	for in, want := range map[string][2]string{
		"Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\nSummary: x\n\nName: body\n": {"PyYAML", "6.0.1"},
		"name:  six \r\nversion:1.16.0\r\n":                                               {"six", "1.16.0"},
		"\nName: after-blank\n":                                                           {"", ""},
		"Name\nVersion 1\n":                                                               {"", ""},
	} {
		n, v := metadataNameVersion([]byte(in))
		if got := [2]string{n, v}; !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
