package worker

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"imagehub/buildah/mounts"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
)

// The kinds of base image MakeBaseImage can make.
const (
	BaseBusybox = "busybox"
	BaseDebian  = "debian"
)

// debianMirror is where debootstrap fetches Debian from, and what the
// image's sources.list points apt at.
const debianMirror = "http://deb.debian.org/debian"

// debianSources is the apt sources.list of the Debian image: the release,
// its updates and its security fixes.
const debianSources = `deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
`

// BaseImageSpec says which base image MakeBaseImage makes and where it goes.
type BaseImageSpec struct {
	// Kind is BaseBusybox (Debian's static busybox, about 1 MB, seconds) or
	// BaseDebian (debootstrap minbase bookworm with a working apt, about a
	// minute).
	Kind    string
	Storage workerspec.Storage
	// TmpDir is an empty folder for the root file system and the build.
	TmpDir string
	// Target is the reference to push, registry/name:tag.
	Target   string
	PushAuth *remote.Auth
	// Insecure lists registry hosts that may be reached over plain http.
	Insecure []string
	// Extra adds files to the root file system, path in the image to
	// content, each with mode 0755: tests use it for stand-in apt-get, conda
	// and pip scripts.
	Extra map[string]string
	// User, when set, is the image's configured user ("1000", say), for
	// checking that builds restore it.
	User string
}

// MakeBaseImage makes a base image without any registry to pull from (only
// the Debian mirror, for BaseDebian), pushes it to spec.Target and returns
// the pushed manifest's digest. It builds "FROM scratch" with the root file
// system added as one tar layer, through the same buildah setup as recipe
// builds, so it needs what they need (root, or a user namespace).
func MakeBaseImage(ctx context.Context, spec BaseImageSpec, log io.Writer) (string, error) {
	rootfs := filepath.Join(spec.TmpDir, "rootfs")
	if err := makeRootfs(ctx, spec.Kind, rootfs, log); err != nil {
		return "", err
	}
	if err := addFiles(rootfs, spec.Extra); err != nil {
		return "", err
	}
	log = &syncWriter{w: log}
	env, err := enterBuildEnv(workerspec.Spec{TmpDir: spec.TmpDir, Target: spec.Target, PushAuth: spec.PushAuth, Insecure: spec.Insecure}, log)
	if err != nil {
		return "", err
	}
	defer env.leave()
	if err := writeTar(rootfs, filepath.Join(env.contextDir, "rootfs.tar")); err != nil {
		return "", fmt.Errorf("packing the root file system: %w", err)
	}
	return buildBaseImage(ctx, spec, env, log)
}

// makeRootfs fills dir with the root file system of one kind of image.
func makeRootfs(ctx context.Context, kind, dir string, log io.Writer) error {
	switch kind {
	case BaseBusybox:
		return busyboxRootfs(ctx, dir)
	case BaseDebian:
		return debianRootfs(ctx, dir, log)
	}
	return fmt.Errorf("unknown base image kind %q (want %q or %q)", kind, BaseBusybox, BaseDebian)
}

// buildBaseImage builds the image from the packed root file system and
// pushes it.
func buildBaseImage(ctx context.Context, spec BaseImageSpec, env *buildEnv, log io.Writer) (string, error) {
	target, err := remote.NormalizeReference(spec.Target)
	if err != nil {
		return "", fmt.Errorf("target image: %w", err)
	}
	text := baseContainerfile(spec)
	containerfile := filepath.Join(spec.TmpDir, "Containerfile.base")
	if err := os.WriteFile(containerfile, []byte(text), 0o644); err != nil {
		return "", err
	}
	store, err := OpenStore(spec.Storage)
	if err != nil {
		return "", err
	}
	tail := newTailWriter(log)
	id, err := buildImage(ctx, store, env, buildParams{
		containerfile: containerfile,
		output:        target,
		pull:          remote.SystemContext(nil, false),
		suffix:        "imagehub-base-image",
		log:           tail,
	})
	if err != nil {
		return "", buildError(err, text, tail.lastLine())
	}
	return pushImage(ctx, store, env, id, target, env.systemContext(target, spec.Insecure), log)
}

// baseContainerfile is the Containerfile of a base image.
func baseContainerfile(spec BaseImageSpec) string {
	var b strings.Builder
	b.WriteString("FROM scratch\nADD rootfs.tar /\n")
	b.WriteString("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
	if spec.User != "" {
		fmt.Fprintf(&b, "USER %s\n", spec.User)
	}
	if spec.Kind == BaseDebian {
		b.WriteString(`CMD ["bash"]` + "\n")
	} else {
		b.WriteString(`CMD ["sh"]` + "\n")
	}
	return b.String()
}

// busyboxPath is where Debian's busybox-static package installs busybox.
const busyboxPath = "/bin/busybox"

// busyboxRootfs makes a minimal root file system: the static busybox, a
// symbolic link for each of its commands (so /bin/sh works), and the files
// and folders programs expect.
func busyboxRootfs(ctx context.Context, dir string) error {
	out, err := exec.CommandContext(ctx, busyboxPath, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("listing the commands of %s (is busybox-static installed?): %w", busyboxPath, err)
	}
	if err := skeleton(dir); err != nil {
		return err
	}
	if err := copyFile(busyboxPath, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		link := filepath.Join(dir, filepath.Clean("/"+applet))
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("/bin/busybox", link); err != nil {
			return err
		}
	}
	return nil
}

// skeleton makes the folders and account files of a minimal system.
func skeleton(dir string) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "proc", "sys", "dev", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|fs.ModeSticky); err != nil {
		return err
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies one regular file.
func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// debianRootfs runs debootstrap (minbase bookworm) into dir, points apt at
// the Debian mirror and drops the downloaded package files and lists.
func debianRootfs(ctx context.Context, dir string, log io.Writer) error {
	debootstrap, err := exec.LookPath("debootstrap")
	if err != nil {
		debootstrap = "/usr/sbin/debootstrap"
	}
	cmd := exec.CommandContext(ctx, debootstrap, "--variant=minbase", "bookworm", dir, debianMirror)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	err = cmd.Run()
	// debootstrap mounts /proc and /sys inside dir and leaves them when it fails.
	if uerr := mounts.UnmountUnder(dir); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("debootstrap: %w", err)
	}
	return tidyDebian(dir)
}

// tidyDebian writes the apt sources and removes what the image does not need.
func tidyDebian(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "etc/apt/sources.list"), []byte(debianSources), 0o644); err != nil {
		return err
	}
	for _, pattern := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*", "var/log/*.log"} {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// addFiles writes extra files into a root file system, each with mode 0755.
func addFiles(rootfs string, files map[string]string) error {
	for name, content := range files {
		path := filepath.Join(rootfs, filepath.Clean("/"+name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(path, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// writeTar packs a root file system into a tar file, keeping numeric owners,
// modes and symbolic links. Device nodes, sockets and pipes are left out: a
// container gets its own /dev, and making nodes needs privileges a rootless
// build lacks.
func writeTar(rootfs, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	w := tar.NewWriter(buf)
	err = filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return addTarEntry(w, rootfs, p)
	})
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = buf.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// addTarEntry writes one file of the root file system.
func addTarEntry(w *tar.Writer, rootfs, path string) error {
	rel, err := filepath.Rel(rootfs, path)
	if err != nil || rel == "." {
		return err
	}
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	mode := info.Mode()
	if !mode.IsRegular() && !mode.IsDir() && mode&fs.ModeSymlink == 0 {
		return nil
	}
	link := ""
	if mode&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	hdr.Name = rel
	if mode.IsDir() {
		hdr.Name += "/"
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	}
	hdr.Uname, hdr.Gname = "", ""
	if err := w.WriteHeader(hdr); err != nil {
		return err
	}
	if !mode.IsRegular() {
		return nil
	}
	return copyInto(w, path)
}

// copyInto appends a file's content to the tar entry just begun.
func copyInto(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
