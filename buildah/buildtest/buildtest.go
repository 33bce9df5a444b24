// Package buildtest holds what the tests of the build packages share: a
// registry per test, the check that real builds can run, and an independent
// client (Debian's skopeo) that says what a registry holds.
package buildtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
)

// NeedRoot skips tests that need real builds when not run as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real buildah builds in tests need root (the rootless path is tested from root by TestRootlessWorker)")
	}
}

// TraversableDir is a t.TempDir that RUN steps' container root, a
// subordinate id, may pass through (0711 up to the system's temporary
// folder), as the server's data folder is.
func TraversableDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Listener accepts connections on 127.0.0.1 for the rest of the test and
// counts them: what a test points a refused request at, to show that
// nothing was sent. It returns the listener's host:port.
func Listener(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), &conns
}

// Registry serves an embedded registry for one test; a non-empty htpasswd
// (see Htpasswd) makes it demand credentials.
func Registry(t testing.TB, htpasswd string) *registry.Server {
	t.Helper()
	r, err := registry.Start(context.Background(), "127.0.0.1:0", filepath.Join(t.TempDir(), "registry"), htpasswd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// RegistryWithAccounts serves a registry guarded as imagehub's embedded one
// is, with a push and a pull-only account generated for one test, and
// returns them as credentials.
func RegistryWithAccounts(t testing.TB) (reg *registry.Server, push, pull *remote.Auth) {
	t.Helper()
	acc, err := registry.LoadOrCreateAccounts(filepath.Join(t.TempDir(), "registry-accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err = registry.StartWithAccounts(context.Background(), "127.0.0.1:0", filepath.Join(t.TempDir(), "registry"), acc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg, &remote.Auth{Username: acc.Push.Username, Password: acc.Push.Password},
		&remote.Auth{Username: acc.Pull.Username, Password: acc.Pull.Password}
}

// Htpasswd writes an htpasswd file with one user and returns its path.
func Htpasswd(t testing.TB, user, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := registry.WriteHtpasswd(path, map[string]string{user: password}); err != nil {
		t.Fatal(err)
	}
	return path
}

// SkopeoInspect asks Debian's skopeo, a client independent of imagehub's
// code, what the registry holds.
func SkopeoInspect(t testing.TB, ref string, auth *remote.Auth) (digest, arch, osName string) {
	t.Helper()
	args := []string{"inspect", "--tls-verify=false"}
	if auth != nil {
		args = append(args, "--creds", auth.Username+":"+auth.Password)
	}
	out, err := exec.Command("skopeo", append(args, "docker://"+ref)...).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v %s", ref, err, Stderr(err))
	}
	var v struct{ Digest, Architecture, Os string }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v.Digest, v.Architecture, v.Os
}

// SkopeoCopy copies an image from one reference to another with Debian's
// skopeo, reading and writing with auth: what anybody holding a registry's
// push credential could do to a tag.
func SkopeoCopy(t testing.TB, src, dst string, auth *remote.Auth) {
	t.Helper()
	args := []string{"copy", "--src-tls-verify=false", "--dest-tls-verify=false"}
	if auth != nil {
		creds := auth.Username + ":" + auth.Password
		args = append(args, "--src-creds", creds, "--dest-creds", creds)
	}
	if out, err := exec.Command("skopeo", append(args, "docker://"+src, "docker://"+dst)...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy %s %s: %v\n%s", src, dst, err, out)
	}
}

// Stderr returns what a failed command wrote to its standard error.
func Stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// TestImage is a small OCI image pushed by PushImage: the digests of its
// manifest and of the blobs it references.
type TestImage struct {
	Manifest string
	Blobs    []string
}

// PushImage pushes a one-layer OCI image whose layer holds note (a
// different note makes different blobs) to repo:tag of the registry at
// addr over its HTTP API, with auth (none when nil), without buildah: the
// registry's own protocol, fast enough for any test.
func PushImage(t testing.TB, addr string, auth *remote.Auth, repo, tag, note string) TestImage {
	t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("not really a tar: " + note)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digestOf(layer), "size": len(layer)}},
	})
	base := "http://" + addr + "/v2/" + repo
	for _, blob := range [][]byte{config, layer} {
		res := send(t, auth, http.MethodPost, base+"/blobs/uploads/", nil, "")
		loc, err := res.Location()
		if err != nil || res.StatusCode != http.StatusAccepted {
			t.Fatalf("starting an upload to %s: %d %v", repo, res.StatusCode, err)
		}
		q := loc.Query()
		q.Set("digest", digestOf(blob))
		loc.RawQuery = q.Encode()
		if res := send(t, auth, http.MethodPut, loc.String(), blob, "application/octet-stream"); res.StatusCode != http.StatusCreated {
			t.Fatalf("uploading a blob to %s: %d", repo, res.StatusCode)
		}
	}
	if res := send(t, auth, http.MethodPut, base+"/manifests/"+tag, manifest, "application/vnd.oci.image.manifest.v1+json"); res.StatusCode != http.StatusCreated {
		t.Fatalf("putting the manifest %s:%s: %d", repo, tag, res.StatusCode)
	}
	return TestImage{Manifest: digestOf(manifest), Blobs: []string{digestOf(config), digestOf(layer)}}
}

// send makes one request to a registry and reads its answer.
func send(t testing.TB, auth *remote.Auth, method, url string, body []byte, contentType string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != nil {
		req.SetBasicAuth(auth.Username, auth.Password)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// digestOf is the OCI digest of data.
func digestOf(data []byte) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(data))
}

// RegistryBlobs lists the digests of the blobs a registry's storage folder
// keeps on disk.
func RegistryBlobs(t testing.TB, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	root := filepath.Join(dir, "docker", "registry", "v2", "blobs", "sha256")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "data" {
			out["sha256:"+filepath.Base(filepath.Dir(p))] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ReachableServer serves h for the rest of the test where a build's RUN
// steps can reach it, and returns its host:port. RUN steps never reach this
// host's loopback nor its own addresses (see the worker's network.go), so
// the server listens in a network namespace of its own, joined to this
// one by a veth pair: this side 10.X.Y.1/30 (one of this host's addresses,
// refused), the server 10.X.Y.2/30 (private, so a build reaches it only
// when it is opened, as a package mirror's address is). Packets never leave
// the machine. It needs root.
func ReachableServer(t testing.TB, h http.Handler) string {
	t.Helper()
	NeedRoot(t)
	holder := exec.Command("sleep", "infinity")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	pid := holder.Process.Pid
	// A /30 of 10.200.0.0/13 picked from the pid, apart from other tests'.
	n := 4 * (pid % (1 << 17))
	prefix := fmt.Sprintf("10.%d.%d.", 200+n>>16, n>>8&0xff)
	here, there := prefix+strconv.Itoa(n&0xff+1), prefix+strconv.Itoa(n&0xff+2)
	link, peer := fmt.Sprintf("ihs%d", pid), fmt.Sprintf("ihp%d", pid)
	for _, args := range [][]string{
		{"ip", "link", "add", link, "type", "veth", "peer", "name", peer, "netns", strconv.Itoa(pid)},
		{"ip", "addr", "add", here + "/30", "dev", link},
		{"ip", "link", "set", link, "up"},
		{"nsenter", "--target", strconv.Itoa(pid), "--net", "ip", "addr", "add", there + "/30", "dev", peer},
		{"nsenter", "--target", strconv.Itoa(pid), "--net", "ip", "link", "set", peer, "up"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", link).Run() })
	ln, err := listenInNetns(fmt.Sprintf("/proc/%d/ns/net", pid), there+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// listenInNetns opens a TCP listener inside a network namespace. A socket
// belongs to the namespace of the thread that made it, so it is made on a
// thread of its own that enters the namespace and is never used again (a
// goroutine that ends with its thread locked takes the thread with it).
func listenInNetns(nsPath, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(nsPath)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("entering %s: %w", nsPath, err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		done <- result{ln, err}
	}()
	r := <-done
	return r.ln, r.err
}
