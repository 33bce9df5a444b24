package worker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bh "go.podman.io/buildah"
	"go.podman.io/storage/pkg/unshare"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/mounts"
	"imagehub/buildah/recipe"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
)

// Environment variables that turn the test binary into a build worker, the
// way the server starts `imagehub build-worker`: the spec file to read, and
// the file to append the worker's events to (one JSON object a line).
const (
	testWorkerEnv       = "IMAGEHUB_TEST_WORKER"
	testWorkerEventsEnv = "IMAGEHUB_TEST_EVENTS"
)

func TestMain(m *testing.M) {
	// buildah re-executes this binary for chroot RUN steps and file copies.
	if bh.InitReexec() {
		return
	}
	if specPath := os.Getenv(testWorkerEnv); specPath != "" {
		os.Exit(testWorkerMain(specPath, os.Getenv(testWorkerEventsEnv)))
	}
	os.Exit(m.Run())
}

// testWorkerMain is what the real binary's build-worker command does: enter
// a user namespace when not root, read the spec, run the worker with the log
// on stdout, report events.
func testWorkerMain(specPath, eventsPath string) int {
	unshare.MaybeReexecUsingUserNamespace(false)
	fmt.Printf("worker: uid %d, rootless %v, host uid %d\n", os.Geteuid(), unshare.IsRootless(), unshare.GetRootlessUID())
	spec, err := workerspec.Read(specPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	emit := func(e workerspec.Event) { appendEvent(eventsPath, e) }
	if err := Run(context.Background(), spec, os.Stdout, emit); err != nil {
		emit(workerspec.Event{Phase: workerspec.PhaseDone, Error: err.Error()})
		fmt.Fprintln(os.Stderr, "build failed:", err)
		return 1
	}
	return 0
}

// appendEvent appends one event to the events file.
func appendEvent(path string, e workerspec.Event) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		return
	}
	defer f.Close()
	_ = json.NewEncoder(f).Encode(e)
}

// readEvents reads an events file written by appendEvent.
func readEvents(t *testing.T, path string) []workerspec.Event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var events []workerspec.Event
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var e workerspec.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	return events
}

// Stand-ins for the package managers: they record their arguments in
// /recorded.txt, so a test can read from the pushed image what ran.
const (
	stubAptGet = "#!/bin/sh\necho \"apt-get $*\" >> /recorded.txt\n" +
		"case \"$*\" in *sleepy*) echo 'sleeping now'; exec sleep 600;; esac\n" +
		"case \"$*\" in *napping*) echo 'sleeping now'; exec sleep 4;; esac\n"
	stubConda = "#!/bin/sh\necho \"conda $*\" >> /recorded.txt\n"
	stubPip   = "#!/bin/sh\necho \"pip $*\" >> /recorded.txt\n"
)

// cacheHit is how buildah's log says that a step came from the layer
// cache ("--> Using cache ID"); pip's "Using cached" is its own cache.
const cacheHit = "--> Using cache "

// allStubs puts apt-get, conda and pip stand-ins into an image.
func allStubs() map[string]string {
	return map[string]string{"/usr/bin/apt-get": stubAptGet, "/usr/local/bin/conda": stubConda, "/usr/local/bin/pip": stubPip}
}

// newTestStorage makes a store under t.TempDir and, at the end of the test,
// shuts it down (unmounting whatever is still mounted) so that the folder can
// be removed.
func newTestStorage(t *testing.T) workerspec.Storage {
	t.Helper()
	dir := t.TempDir()
	s := workerspec.Storage{GraphRoot: filepath.Join(dir, "graph"), RunRoot: filepath.Join(dir, "run")}
	t.Cleanup(func() { shutdownTestStorage(t, s, dir) })
	return s
}

// shutdownTestStorage shuts a test store down and makes sure nothing stays
// mounted below dir, so that its removal cannot fail.
func shutdownTestStorage(t *testing.T, s workerspec.Storage, dir string) {
	if _, err := os.Stat(s.GraphRoot); err == nil {
		if store, err := OpenStore(s); err == nil {
			if _, err := store.Shutdown(true); err != nil {
				t.Logf("store shutdown: %v", err)
			}
		}
	}
	if err := mounts.UnmountUnder(dir); err != nil {
		t.Logf("unmount: %v", err)
	}
}

// testBase says what base image a test wants.
type testBase struct {
	kind  string
	name  string
	extra map[string]string
	user  string
	auth  *remote.Auth
}

// pushTestBase makes a base image, pushes it to reg and returns its
// reference and digest.
func pushTestBase(t *testing.T, reg *registry.Server, s workerspec.Storage, b testBase) (string, string) {
	t.Helper()
	if b.kind == "" {
		b.kind = BaseBusybox
	}
	ref := reg.Addr() + "/" + b.name + ":base"
	var log bytes.Buffer
	start := time.Now()
	digest, err := MakeBaseImage(context.Background(), BaseImageSpec{
		Kind: b.kind, Storage: s, TmpDir: t.TempDir(), Target: ref, PushAuth: b.auth,
		Insecure: []string{reg.Addr()}, Extra: b.extra, User: b.user,
	}, &log)
	if err != nil {
		t.Fatalf("MakeBaseImage %s: %v\n%s", b.kind, err, log.String())
	}
	t.Logf("%s base image %s made and pushed in %.1fs", b.kind, ref, time.Since(start).Seconds())
	return ref, digest
}

// recorder collects a worker's events.
type recorder struct {
	mu     sync.Mutex
	events []workerspec.Event
}

func (r *recorder) add(e workerspec.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// phases are the phases of the events but the steps (see steps).
func (r *recorder) phases() []workerspec.Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	var p []workerspec.Phase
	for _, e := range r.events {
		if e.Phase != workerspec.PhaseStep {
			p = append(p, e.Phase)
		}
	}
	return p
}

// steps are the step events, as "n/m".
func (r *recorder) steps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, steps := withoutSteps(r.events)
	return steps
}

// withoutSteps splits the step events, as "n/m", from the others.
func withoutSteps(events []workerspec.Event) (others []workerspec.Event, steps []string) {
	for _, e := range events {
		if e.Phase == workerspec.PhaseStep {
			steps = append(steps, fmt.Sprintf("%d/%d", e.Step, e.Steps))
		} else {
			others = append(others, e)
		}
	}
	return others, steps
}

// baseDigest is the base digest of the last PhaseBase event, "" for none.
func (r *recorder) baseDigest() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	digest := ""
	for _, e := range r.events {
		if e.Phase == workerspec.PhaseBase {
			digest = e.BaseDigest
		}
	}
	return digest
}

func (r *recorder) last() workerspec.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return workerspec.Event{}
	}
	return r.events[len(r.events)-1]
}

// lockedBuffer is a log that a test may read while a worker writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runTestWorker runs Run in this process.
func runTestWorker(t *testing.T, ctx context.Context, spec workerspec.Spec) (*recorder, string, time.Duration, error) {
	t.Helper()
	rec := &recorder{}
	log := &lockedBuffer{}
	start := time.Now()
	err := Run(ctx, spec, log, rec.add)
	return rec, log.String(), time.Since(start), err
}

// testSpec is a worker spec for one build in a test. Its temporary folder is
// removed the way the server removes it.
func testSpec(t *testing.T, id int64, s workerspec.Storage, reg *registry.Server, base, target string, p recipe.Packages) workerspec.Spec {
	tmp := filepath.Join(buildtest.TraversableDir(t), "build")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mounts.RemoveAll(tmp); err != nil {
			t.Error(err)
		}
	})
	return workerspec.Spec{
		BuildID: id, Storage: s, TmpDir: tmp, BaseImage: base, Packages: p,
		Target: reg.Addr() + "/" + target, Insecure: []string{reg.Addr()}, Owner: "system",
	}
}

// imageFile is one file of an image's flattened file system.
type imageFile struct {
	content  []byte
	mode     int64
	linkname string
}

// imageFiles copies an image out of the registry with skopeo and flattens
// its layers into path → file (whiteouts applied).
func imageFiles(t *testing.T, ref string, auth *remote.Auth) map[string]imageFile {
	t.Helper()
	dir := t.TempDir()
	args := []string{"copy", "--src-tls-verify=false"}
	if auth != nil {
		args = append(args, "--src-creds", auth.Username+":"+auth.Password)
	}
	cmd := exec.Command("skopeo", append(args, "docker://"+ref, "oci:"+dir+":img")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy %s: %v\n%s", ref, err, out)
	}
	files := map[string]imageFile{}
	for _, layer := range ociLayers(t, dir) {
		applyLayer(t, files, layer)
	}
	return files
}

// ociLayers returns the layer blob paths of the one image in an OCI layout.
func ociLayers(t *testing.T, dir string) []string {
	t.Helper()
	var index struct{ Manifests []struct{ Digest string } }
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("OCI layout has %d manifests", len(index.Manifests))
	}
	var m struct{ Layers []struct{ Digest string } }
	readJSON(t, blobPath(dir, index.Manifests[0].Digest), &m)
	var paths []string
	for _, l := range m.Layers {
		paths = append(paths, blobPath(dir, l.Digest))
	}
	return paths
}

func blobPath(dir, digest string) string {
	algo, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(dir, "blobs", algo, hex)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

// applyLayer adds a gzip tar layer to files.
func applyLayer(t *testing.T, files map[string]imageFile, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimPrefix(filepath.Clean("/"+hdr.Name), "/")
		dir, base := filepath.Split(name)
		if strings.HasPrefix(base, ".wh.") {
			delete(files, filepath.Join(dir, strings.TrimPrefix(base, ".wh.")))
			continue
		}
		content, _ := io.ReadAll(tr)
		files[name] = imageFile{content: content, mode: hdr.Mode, linkname: hdr.Linkname}
	}
}

// childWorker is a build worker running as a child process of the test, the
// way the server runs `imagehub build-worker`.
type childWorker struct {
	cmd     *exec.Cmd
	logPath string
	events  string
	done    chan error
}

// childOptions says how to start a child worker.
type childOptions struct {
	exe  string              // binary to run; the test binary when empty
	cred *syscall.Credential // run as another user
	env  []string            // environment; this process's when nil
	dir  string              // where its spec, log and events files go
	// ownMountNS starts the worker in a mount namespace of its own, so that
	// its mounts end with it.
	ownMountNS bool
}

// startChildWorker writes the spec and starts the test binary as a worker in
// its own process group.
func startChildWorker(t *testing.T, spec workerspec.Spec, o childOptions) *childWorker {
	t.Helper()
	if o.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		o.exe = exe
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	specPath := filepath.Join(o.dir, fmt.Sprintf("spec-%d.json", spec.BuildID))
	if err := workerspec.Write(specPath, spec); err != nil {
		t.Fatal(err)
	}
	c := &childWorker{
		logPath: filepath.Join(o.dir, fmt.Sprintf("log-%d.txt", spec.BuildID)),
		events:  filepath.Join(o.dir, fmt.Sprintf("events-%d.json", spec.BuildID)),
		done:    make(chan error, 1),
	}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	if o.cred != nil {
		chownAll(t, o.cred, specPath, c.logPath)
	}
	env := o.env
	if env == nil {
		env = os.Environ()
	}
	c.cmd = exec.Command(o.exe)
	c.cmd.Env = append(env, testWorkerEnv+"="+specPath, testWorkerEventsEnv+"="+c.events)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: o.cred}
	if o.ownMountNS {
		c.cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.kill(t) })
	return c
}

// chownAll gives files to the user a child runs as.
func chownAll(t *testing.T, cred *syscall.Credential, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
}

// log is what the worker has written so far.
func (c *childWorker) log() string {
	data, _ := os.ReadFile(c.logPath)
	return string(data)
}

// waitFor waits until the worker's log contains s.
func (c *childWorker) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(c.log(), s) {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("worker ended (%v) before writing %q:\n%s", err, s, c.log())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker did not write %q within %s:\n%s", s, timeout, c.log())
		}
	}
}

// wait waits for the worker to end and returns its exit error.
func (c *childWorker) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("worker still running after %s:\n%s", timeout, c.log())
		return nil
	}
}

// kill does what the server does to cancel a build: SIGKILL the worker's
// process group and every process descended from it (a RUN step may have
// left the group). Descendants are listed before anything is killed, since
// orphans lose their parent link.
func (c *childWorker) kill(t *testing.T) {
	select {
	case err := <-c.done:
		c.done <- err
		return
	default:
	}
	pid := c.cmd.Process.Pid
	victims := descendantsOf(pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for _, p := range victims {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	select {
	case err := <-c.done:
		c.done <- err
	case <-time.After(30 * time.Second):
		t.Errorf("worker %d did not die", pid)
	}
}

// alive reports whether the worker process still runs.
func (c *childWorker) alive() bool {
	select {
	case err := <-c.done:
		c.done <- err
		return false
	default:
		return true
	}
}

// descendantsOf lists every process whose chain of parents leads to root.
func descendantsOf(root int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(pid); ok {
			parent[pid] = ppid
		}
	}
	var out []int
	for pid := range parent {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// parentOf reads a process's parent from /proc.
func parentOf(pid int) (int, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, false
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}
