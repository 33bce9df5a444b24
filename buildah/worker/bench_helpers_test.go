package worker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	bh "go.podman.io/buildah"
	"go.podman.io/buildah/define"
	"go.podman.io/image/v5/docker/reference"
	"golang.org/x/sys/unix"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/mounts"
	"imagehub/buildah/queue"
	"imagehub/buildah/recipe"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
)

// benchStub is a stand-in package manager that does a little real work: it
// writes 1 MiB of random bytes for each package it is asked for, so that
// every RUN step has a layer to commit, compress and push. It runs in
// busybox sh and in Debian's dash alike.
func benchStub(manager string) string {
	return "#!/bin/sh\n" +
		"mkdir -p /opt/stub\n" +
		"for p in \"$@\"; do\n" +
		"  case \"$p\" in -*|update|install|clean) continue;; esac\n" +
		"  f=$(printf %s \"$p\" | tr -c 'A-Za-z0-9.=-' _)\n" +
		"  head -c 1048576 /dev/urandom > \"/opt/stub/" + manager + "-$f\"\n" +
		"done\n"
}

// benchOwner owns the benchmarks' images.
const benchOwner = "system"

// benchEnv is what the build benchmarks share: one registry, the storage
// driver both sides use, and base images made on first use.
type benchEnv struct {
	root   string // parent benchmark's temporary folder
	reg    *registry.Server
	driver string
	bases  map[string]string // kind → pushed reference
	seq    int               // numbers folders, repositories and builds
	// packageCache is the package cache folder of imagehub's builds; empty
	// keeps each build's caches in its own folder, as a cold build has.
	packageCache string
	// cacheRepo is the layer cache repository of imagehub's builds, as the
	// Kubernetes runner sets it; empty: none.
	cacheRepo string
}

// newBenchEnv starts the registry and picks the storage driver. Everything
// it makes is removed when the parent benchmark ends.
func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("real buildah builds in benchmarks need root")
	}
	e := &benchEnv{root: buildtest.TraversableDir(b), bases: map[string]string{}}
	// Runs before TempDir's removal (cleanups run last first).
	b.Cleanup(func() {
		if err := mounts.UnmountUnder(e.root); err != nil {
			b.Logf("unmount: %v", err)
		}
	})
	b.Setenv(workerHelperEnv, "1")
	reg, err := registry.Start(context.Background(), "127.0.0.1:0", filepath.Join(e.root, "registry"), "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reg.Close() })
	e.reg = reg
	e.driver = e.probeDriver(b)
	return e
}

// probeDriver is the driver OpenStore picks for a new store on this machine
// (overlay where the kernel allows it, else vfs). Both sides of a comparison
// are then given it explicitly.
func (e *benchEnv) probeDriver(b *testing.B) string {
	b.Helper()
	dir, st := e.newDir(b, "probe")
	defer e.removeDir(b, dir, st, true)
	store, err := OpenStore(st)
	if err != nil {
		b.Fatal(err)
	}
	return store.GraphDriverName()
}

// newDir makes a fresh folder with an empty store in it.
func (e *benchEnv) newDir(b *testing.B, label string) (string, workerspec.Storage) {
	b.Helper()
	e.seq++
	dir := filepath.Join(e.root, fmt.Sprintf("%s-%d", label, e.seq))
	if err := os.MkdirAll(dir, 0o711); err != nil {
		b.Fatal(err)
	}
	return dir, workerspec.Storage{GraphRoot: filepath.Join(dir, "graph"), RunRoot: filepath.Join(dir, "run"), Driver: e.driver}
}

// removeDir removes a folder made by newDir. opened says whether this
// process opened its store, which must then be shut down first (unmounting
// its layers); builds in child processes ran in mount namespaces of their
// own, and only a failed build's clean-up opens their store here.
func (e *benchEnv) removeDir(b *testing.B, dir string, st workerspec.Storage, opened bool) {
	if opened {
		if store, err := OpenStore(st); err == nil {
			if _, err := store.Shutdown(true); err != nil {
				b.Logf("store shutdown: %v", err)
			}
		}
	}
	if err := mounts.RemoveAll(dir); err != nil {
		b.Errorf("removing %s: %v", dir, err)
	}
}

// repo names a fresh repository in the registry, so that no build is ever
// "up to date" and no layer of an earlier iteration is already linked to it.
func (e *benchEnv) repo(label string) string {
	e.seq++
	return fmt.Sprintf("%s/bench/%s-%d", e.reg.Addr(), label, e.seq)
}

// base returns the reference of a base image of the given kind, making and
// pushing it on first use: busybox with stand-ins for apt-get, conda and pip,
// or Debian minbase (real apt) with a stand-in pip.
func (e *benchEnv) base(b *testing.B, kind string) string {
	b.Helper()
	if ref, ok := e.bases[kind]; ok {
		return ref
	}
	extra := map[string]string{"/usr/local/bin/pip": benchStub("pip")}
	if kind == BaseBusybox {
		extra["/usr/bin/apt-get"] = benchStub("apt")
		extra["/usr/local/bin/conda"] = benchStub("conda")
	}
	dir, st := e.newDir(b, "base-"+kind)
	defer e.removeDir(b, dir, st, true)
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		b.Fatal(err)
	}
	ref := e.reg.Addr() + "/bench/" + kind + ":base"
	var log bytes.Buffer
	start := time.Now()
	_, err := MakeBaseImage(context.Background(), BaseImageSpec{
		Kind: kind, Storage: st, TmpDir: tmp, Target: ref, Insecure: []string{e.reg.Addr()}, Extra: extra,
	}, &log)
	if err != nil {
		b.Fatalf("MakeBaseImage %s: %v\n%s", kind, err, tail(log.String(), 40))
	}
	b.Logf("%s base image %s made and pushed in %.1fs (not measured)", kind, ref, time.Since(start).Seconds())
	e.bases[kind] = ref
	return ref
}

// pullBase pulls a base image into a store in this process and shuts the
// store down again: the "cold" state of a store that has nothing but the
// base.
func (e *benchEnv) pullBase(b *testing.B, st workerspec.Storage, dir, ref string) {
	b.Helper()
	store, err := OpenStore(st)
	if err != nil {
		b.Fatal(err)
	}
	policy, tmp := filepath.Join(dir, "policy.json"), filepath.Join(dir, "pull-tmp")
	if err := os.WriteFile(policy, []byte(insecureAcceptAnything), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		b.Fatal(err)
	}
	// containers/common reads TMPDIR once, into the configuration it caches,
	// and falls back to that when TMPDIR is unset: it would name the
	// (removed) folder of the first build this process ran.
	defer setEnv("TMPDIR", tmp)()
	oldOut := logrus.StandardLogger().Out
	logrus.SetOutput(io.Discard)
	defer logrus.SetOutput(oldOut)
	_, err = bh.Pull(context.Background(), ref, bh.PullOptions{
		SignaturePolicyPath: policy, Store: store, SystemContext: remote.SystemContext(nil, true),
		ReportWriter: io.Discard, PullPolicy: define.PullAlways,
	})
	if err != nil {
		b.Fatalf("pulling %s: %v", ref, err)
	}
	if _, err := store.Shutdown(true); err != nil {
		b.Fatalf("store shutdown: %v", err)
	}
}

// sideRun is how long one side of a comparison took, and the CPU time
// (user and system) its processes used.
type sideRun struct {
	total, build, push time.Duration
	cpu                time.Duration
	log                string
}

// childrenCPU is the CPU time of this process's children that have ended
// and been waited for, with their own waited-for descendants: measured
// before and after a side, the CPU time of that side's processes (this
// process's registry excepted), which a shared machine's load disturbs
// less than seconds.
func childrenCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runImagehub builds and pushes one recipe exactly as the server does: a
// LocalRunner starts a build-worker child process (its own process group and
// mount namespace), which runs Run. It times the whole job, from
// starting the worker to the worker's exit, and splits it at the pushing
// event. A build that ends "up to date" is an error: it did no work.
func (e *benchEnv) runImagehub(ctx context.Context, st workerspec.Storage, dir, base string, pkgs recipe.Packages, repo string) (sideRun, error) {
	e.seq++
	spec := workerspec.Spec{
		BuildID: int64(e.seq), Storage: st, TmpDir: filepath.Join(dir, fmt.Sprintf("tmp-%d", e.seq)),
		BaseImage: base, Packages: pkgs, Target: repo + ":" + recipe.Tag(base, pkgs), Insecure: []string{e.reg.Addr()},
		Owner: benchOwner, PackageCache: e.packageCache, CacheRepo: e.cacheRepo,
	}
	if err := os.MkdirAll(spec.TmpDir, 0o755); err != nil {
		return sideRun{}, err
	}
	defer mounts.RemoveAll(spec.TmpDir)
	runner := helperRunner(st)
	cpu, start := childrenCPU(), time.Now()
	job, err := runner.Start(ctx, spec, filepath.Join(dir, fmt.Sprintf("job-%d", e.seq)))
	if err != nil {
		return sideRun{}, err
	}
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&out, job.Output()); close(copied) }()
	var pushing time.Time
	var done workerspec.Event
	for ev := range job.Events() {
		switch ev.Phase {
		case workerspec.PhasePushing:
			pushing = time.Now()
		case workerspec.PhaseDone:
			done = ev
		}
	}
	werr := job.Wait()
	end := time.Now()
	<-copied
	r := sideRun{total: end.Sub(start), cpu: childrenCPU() - cpu, log: out.String()}
	switch {
	case werr != nil || done.Error != "":
		return r, fmt.Errorf("imagehub build: %v %s\n%s", werr, done.Error, tail(r.log, 40))
	case done.UpToDate || done.Digest == "" || pushing.IsZero():
		return r, fmt.Errorf("imagehub build did not build and push (event %+v)\n%s", done, tail(r.log, 40))
	}
	r.build, r.push = pushing.Sub(start), end.Sub(pushing)
	return r, nil
}

// runCLI builds and pushes the same Containerfile with Debian's buildah CLI,
// with the settings imagehub uses: the same storage driver (and options),
// chroot isolation, host network, the layer cache on, the same open-files
// limit, OCI format, gzip, an empty build context, TMPDIR in the build's
// folder. Like the imagehub worker, each command runs in a mount namespace of
// its own.
func (e *benchEnv) runCLI(ctx context.Context, st workerspec.Storage, dir, base string, pkgs recipe.Packages, repo string) (sideRun, error) {
	info, err := remote.Inspect(ctx, base, nil, true)
	if err != nil {
		return sideRun{}, err
	}
	e.seq++
	work := filepath.Join(dir, fmt.Sprintf("cli-%d", e.seq))
	contextDir, tmp := filepath.Join(work, "context"), filepath.Join(work, "tmp")
	for _, d := range []string{contextDir, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return sideRun{}, err
		}
	}
	defer mounts.RemoveAll(work)
	containerfile, policy := filepath.Join(work, "Containerfile"), filepath.Join(work, "policy.json")
	named, err := reference.ParseNormalizedNamed(base)
	if err != nil {
		return sideRun{}, err
	}
	setup := recipe.Setup{CacheScope: recipe.CacheScope(benchOwner, named.Name())}
	if err := os.WriteFile(containerfile, []byte(recipe.Containerfile(base, pkgs, info.User, setup)), 0o644); err != nil {
		return sideRun{}, err
	}
	if err := os.WriteFile(policy, []byte(insecureAcceptAnything), 0o644); err != nil {
		return sideRun{}, err
	}
	global := []string{"--storage-driver", st.Driver, "--root", st.GraphRoot, "--runroot", st.RunRoot}
	if st.Driver == driverOverlay {
		global = append(global, "--storage-opt", "overlay.skip_mount_home=true")
	}
	// The isolation imagehub gives RUN steps: runc, a network namespace of
	// the build's own behind slirp4netns with the same policy, slirp's DNS.
	// Not the subordinate ids: Debian's buildah 1.28 with --userns-uid-map
	// fails at the second RUN step of a busybox base ("error mounting
	// .containerenv ... permission denied"), so the CLI is spared that cost.
	network, err := startBuildNet(nil, nil)
	if err != nil {
		return sideRun{}, err
	}
	defer network.Close()
	if err := network.Wait(); err != nil {
		return sideRun{}, err
	}
	bud := append(slices.Clone(global), "bud", "--isolation", "oci", "--runtime", "runc",
		"--network", "ns:"+network.Path(), "--dns", slirpDNS,
		"--layers", "--tls-verify=false", "--signature-policy", policy, "--format", "oci")
	// The open-files limit as imagehub sets it. Not the processes limit: the
	// CLI first lowers its own to its default (nproc=32768:32768) and then
	// cannot raise it again without CAP_SYS_RESOURCE.
	for _, u := range processUlimits(0) {
		if strings.HasPrefix(u, "nofile=") {
			bud = append(bud, "--ulimit", u)
		}
	}
	const local = "localhost/bench-cli:latest"
	bud = append(bud, "-f", containerfile, "-t", local, contextDir)
	push := append(slices.Clone(global), "push", "--tls-verify=false", "--signature-policy", policy,
		"--format", "oci", "--compression-format", "gzip", local, "docker://"+repo+":"+recipe.Tag(base, pkgs))

	var out bytes.Buffer
	cpu, start := childrenCPU(), time.Now()
	err = runBuildah(ctx, tmp, &out, bud)
	pushing := time.Now()
	if err == nil {
		err = runBuildah(ctx, tmp, &out, push)
	}
	end := time.Now()
	r := sideRun{total: end.Sub(start), build: pushing.Sub(start), push: end.Sub(pushing), cpu: childrenCPU() - cpu, log: out.String()}
	if err != nil {
		return r, fmt.Errorf("buildah CLI: %v\n%s", err, tail(r.log, 40))
	}
	if _, ok, err := remote.TagExists(ctx, repo+":"+recipe.Tag(base, pkgs), nil, true); err != nil || !ok {
		return r, fmt.Errorf("the CLI's push is not in the registry (%v)\n%s", err, tail(r.log, 40))
	}
	return r, nil
}

// runBuildah runs one buildah CLI command in its own process group and
// mount namespace, with TMPDIR set, its output appended to out.
func runBuildah(ctx context.Context, tmp string, out *bytes.Buffer, args []string) error {
	fmt.Fprintf(out, "$ buildah %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "buildah", args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = queue.WorkerEnv(tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: syscall.CLONE_NEWNS}
	return cmd.Run()
}

// tail is the last n lines of a log.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// seconds lists durations in seconds.
func seconds(ds []time.Duration) []float64 {
	s := make([]float64, len(ds))
	for i, d := range ds {
		s[i] = d.Seconds()
	}
	return s
}

// median is the middle value (the mean of the two middle values for an even
// count) of a non-empty list.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
