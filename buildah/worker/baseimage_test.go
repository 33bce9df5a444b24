package worker

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/remote"
)

func TestBaseImageBusybox(t *testing.T) {
	buildtest.NeedRoot(t)
	reg := buildtest.Registry(t, "")
	ref, digest := pushTestBase(t, reg, newTestStorage(t), testBase{
		name: "base/busybox", user: "1000",
		extra: map[string]string{"/usr/local/bin/hello-stub": "#!/bin/sh\necho hi\n"},
	})
	files := imageFiles(t, ref, nil)
	if f, ok := files["/bin/busybox"]; !ok || len(f.content) < 500_000 || f.mode&0o111 == 0 {
		t.Errorf("/bin/busybox missing or not an executable busybox (%d bytes, mode %o)", len(f.content), f.mode)
	}
	for _, applet := range []string{"/bin/sh", "/bin/ls", "/bin/sleep"} {
		if f := files[applet]; f.linkname != "/bin/busybox" {
			t.Errorf("%s links to %q, want /bin/busybox", applet, f.linkname)
		}
	}
	if f := files["/usr/local/bin/hello-stub"]; string(f.content) != "#!/bin/sh\necho hi\n" || f.mode&0o777 != 0o755 {
		t.Errorf("extra file = %q mode %o", f.content, f.mode)
	}
	if f := files["/tmp"]; f.mode&0o1777 != 0o1777 {
		t.Errorf("/tmp mode = %o, want 1777", f.mode)
	}
	info, err := remote.Inspect(context.Background(), ref, nil, true)
	if err != nil || info.Digest != digest || info.User != "1000" {
		t.Errorf("Inspect = %+v, %v; want digest %s and user 1000", info, err, digest)
	}
}

func TestBaseImageUnknownKind(t *testing.T) {
	_, err := MakeBaseImage(context.Background(), BaseImageSpec{Kind: "alpine", TmpDir: t.TempDir(), Target: "127.0.0.1:1/x:y"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "alpine") {
		t.Errorf("MakeBaseImage(alpine) = %v", err)
	}
}

func TestBaseImageTarKeepsLinksAndSkipsSpecialFiles(t *testing.T) {
	root := t.TempDir()
	if err := addFiles(root, map[string]string{"bin/tool": "x", "etc/conf": "y"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/tool", filepath.Join(root, "bin/alias")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := writeTar(root, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]*tar.Header{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[hdr.Name] = hdr
	}
	for _, name := range []string{"bin/", "bin/tool", "bin/alias", "etc/", "etc/conf"} {
		if got[name] == nil {
			t.Errorf("tar lacks %s (has %v)", name, keys(got))
		}
	}
	if h := got["bin/alias"]; h != nil && (h.Typeflag != tar.TypeSymlink || h.Linkname != "/bin/tool") {
		t.Errorf("bin/alias = type %c link %q", h.Typeflag, h.Linkname)
	}
	if h := got["bin/tool"]; h != nil && (h.Mode&0o777 != 0o755 || h.Uname != "" || h.Uid != os.Getuid()) {
		t.Errorf("bin/tool = mode %o owner %q/%d", h.Mode, h.Uname, h.Uid)
	}
	if got["fifo"] != nil {
		t.Error("the tar holds a named pipe")
	}
}

func keys[V any](m map[string]V) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	return k
}
