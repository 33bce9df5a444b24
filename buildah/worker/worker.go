package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"imagehub/buildah/recipe"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	bh "go.podman.io/buildah"
	"go.podman.io/buildah/define"
	"go.podman.io/buildah/imagebuildah"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"
)

// Registry requests that fail for a network reason are tried this many more
// times, this far apart; authentication and "not found" errors are not.
const (
	registryRetries    = 2
	registryRetryDelay = 2 * time.Second
)

// Run builds one recipe and pushes it: the whole job of one
// build-worker process. When spec.Target already exists in its registry it
// only says so ("up to date") and reports the existing digest. Otherwise it
// reads the base image's user, generates the Containerfile, builds it with
// buildah (chroot isolation, host network, a layer cache shared by all builds
// in spec.Storage) and pushes the result, calling events at each phase.
//
// Everything a person should see goes to log: the Containerfile, the build
// steps with their output, and the push. Credentials never do: they go to
// the registries only through containers/image's configuration. The error
// returned is one line, fit to be the build's failure reason; the caller
// reports the failure event.
//
// Cancelling ctx ends the build at the next step, not during a RUN step that
// is running: to stop a build at once, kill the worker's process group, then
// call CleanupBuild and RemoveBuildDir.
//
// For as long as it runs, Run points the process's TMPDIR at
// spec.TmpDir and the standard logrus logger (which buildah and
// containers/image write to) at log, and puts both back afterwards: it is
// meant to own its process. The store stays open when it returns.
//
// Rootless: a worker process that is not root must first, right after
// buildah's InitReexec, call unshare.MaybeReexecUsingUserNamespace(false).
// That re-executes it as root of a new user namespace, which the setuid
// newuidmap and newgidmap (Debian package uidmap; they must be on PATH) map
// from the user's ranges in /etc/subuid and /etc/subgid (65536 ids each).
// Inside it, chroot isolation and the kernel's own overlay (vfs where that is
// refused) work without runc or fuse-overlayfs. The storage folders and
// spec.TmpDir must belong to that user. HOME is not needed. XDG_RUNTIME_DIR
// must be unset or name an existing folder of that user: containers/storage
// checks it and fails otherwise. TestRootlessWorker runs exactly this.
func Run(ctx context.Context, spec workerspec.Spec, log io.Writer, events func(workerspec.Event)) error {
	if events == nil {
		events = func(workerspec.Event) {}
	}
	log = &syncWriter{w: log}
	target, err := remote.NormalizeReference(spec.Target)
	if err != nil {
		return fmt.Errorf("target image: %w", err)
	}
	digest, upToDate, err := outboundPolicy(spec).TagExists(ctx, target, spec.PushAuth, isInsecure(target, spec.Insecure))
	if err != nil {
		return fmt.Errorf("checking whether %s exists: %s", target, workerspec.Reason(err))
	}
	if upToDate {
		fmt.Fprintf(log, "%s is up to date (%s): nothing to build.\n", target, digest)
		events(workerspec.Event{Phase: workerspec.PhaseDone, UpToDate: true, Digest: digest})
		return nil
	}
	events(workerspec.Event{Phase: workerspec.PhaseBuilding})
	digest, err = buildAndPush(ctx, spec, target, log, events)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "Pushed %s@%s\n", target, digest)
	events(workerspec.Event{Phase: workerspec.PhaseDone, Digest: digest})
	return nil
}

// buildAndPush does the work of a build that is not up to date.
func buildAndPush(ctx context.Context, spec workerspec.Spec, target string, log io.Writer, events func(workerspec.Event)) (string, error) {
	env, err := enterBuildEnv(spec.TmpDir, log)
	if err != nil {
		return "", err
	}
	defer env.leave()
	store, err := OpenStore(spec.Storage)
	if err != nil {
		return "", err
	}
	containerfile, text, err := writeRecipeContainerfile(ctx, spec, log)
	if err != nil {
		return "", err
	}
	tail := newTailWriter(log)
	imageID, err := buildImage(ctx, store, env, buildParams{
		containerfile: containerfile,
		output:        target,
		pull:          pullContext(spec),
		layers:        true,
		suffix:        ContainerSuffix(spec.BuildID),
		log:           tail,
	})
	if err != nil {
		return "", buildError(err, text, tail.lastLine())
	}
	events(workerspec.Event{Phase: workerspec.PhasePushing})
	return pushImage(ctx, store, env, imageID, target, pushContext(spec, target), log)
}

// writeRecipeContainerfile generates the recipe's Containerfile, restoring
// the base image's own user at the end, writes it into the build's temporary
// folder and shows it in the log (it never holds a secret).
func writeRecipeContainerfile(ctx context.Context, spec workerspec.Spec, log io.Writer) (path, text string, err error) {
	base, err := remote.NormalizeReference(spec.BaseImage)
	if err != nil {
		return "", "", fmt.Errorf("base image: %w", err)
	}
	info, err := outboundPolicy(spec).Inspect(ctx, base, spec.PullAuth, isInsecure(base, spec.Insecure))
	if err != nil {
		return "", "", fmt.Errorf("base image %s: %s", base, workerspec.Reason(err))
	}
	if err := refuseOnBuild(info.OnBuild); err != nil {
		return "", "", err
	}
	// FROM names the digest just inspected, so that the image built on is
	// the one whose user and triggers were read, even from a registry that
	// answers the pull with another image than the look-up.
	from, err := remote.PinDigest(base, info.Digest)
	if err != nil {
		return "", "", fmt.Errorf("base image %s: %w", base, err)
	}
	if err := recipe.CheckContainerfileInputs(from, info.User); err != nil {
		return "", "", err
	}
	text = recipe.Containerfile(from, spec.Packages, info.User)
	path = filepath.Join(spec.TmpDir, "Containerfile")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", "", err
	}
	fmt.Fprintf(log, "Containerfile:\n%s\n", text)
	return path, text, nil
}

// refuseOnBuild refuses a base image with ONBUILD triggers: buildah would
// run them before the recipe's first step, and they may do what no recipe
// can (ADD from a URL, COPY --from another image with the pull
// credentials, RUN anything), out of sight of whoever reads the recipe.
func refuseOnBuild(triggers []string) error {
	if len(triggers) == 0 {
		return nil
	}
	const shown = 3
	quoted := make([]string, 0, shown)
	for _, t := range triggers[:min(len(triggers), shown)] {
		if len(t) > 80 {
			t = t[:77] + "..."
		}
		quoted = append(quoted, fmt.Sprintf("%q", t))
	}
	list := strings.Join(quoted, ", ")
	if more := len(triggers) - shown; more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return fmt.Errorf("the base image has ONBUILD triggers (%s), which would run code the recipe does not show; use a base image without them", list)
}

// outboundPolicy is where the worker's own registry requests may go (see
// remote.Policy): public addresses, and the registries the server is
// configured with, wherever they are: the one it pushes to (the target's)
// and the insecure ones, the embedded registry among them. A base image on
// the server's loopback, a private network or the cloud's metadata address
// is refused before anything is fetched.
func outboundPolicy(spec workerspec.Spec) *remote.Policy {
	registries := slices.Clone(spec.Insecure)
	if target, err := remote.NormalizeReference(spec.Target); err == nil {
		registries = append(registries, remote.Host(target))
	}
	return remote.NewPolicy(registries...)
}

// pullContext is the containers/image configuration for pulling the base
// image: its credentials, plain http when its registry is insecure, and
// the outbound policy.
func pullContext(spec workerspec.Spec) *types.SystemContext {
	return outboundPolicy(spec).SystemContext(spec.BaseImage, spec.PullAuth, isInsecure(spec.BaseImage, spec.Insecure))
}

// pushContext is the configuration for pushing to target.
func pushContext(spec workerspec.Spec, target string) *types.SystemContext {
	return outboundPolicy(spec).SystemContext(target, spec.PushAuth, isInsecure(target, spec.Insecure))
}

// isInsecure reports whether ref's registry host is one of the insecure ones.
func isInsecure(ref string, insecure []string) bool {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false
	}
	return slices.Contains(insecure, reference.Domain(named))
}

// buildEnv is what a buildah build of this package runs in: a signature
// policy of its own and an empty build context in the build's temporary
// folder, with TMPDIR and the process-wide logrus logger redirected until
// leave is called.
type buildEnv struct {
	policyPath string
	contextDir string
	leave      func()
}

// insecureAcceptAnything is the signature policy of this service: it builds
// from the images an administrator chose and checks no signatures.
const insecureAcceptAnything = `{"default":[{"type":"insecureAcceptAnything"}]}`

// enterBuildEnv prepares tmpDir for a build (policy file, empty build
// context) and points TMPDIR and logrus at it and at log until leave is
// called.
func enterBuildEnv(tmpDir string, log io.Writer) (*buildEnv, error) {
	env := &buildEnv{
		policyPath: filepath.Join(tmpDir, "policy.json"),
		contextDir: filepath.Join(tmpDir, "context"),
	}
	if err := os.MkdirAll(env.contextDir, 0o755); err != nil {
		return nil, fmt.Errorf("build folder: %w", err)
	}
	if err := os.WriteFile(env.policyPath, []byte(insecureAcceptAnything), 0o644); err != nil {
		return nil, fmt.Errorf("build folder: %w", err)
	}
	restoreTmp := setEnv("TMPDIR", tmpDir)
	oldOut := logrus.StandardLogger().Out
	logrus.SetOutput(log)
	env.leave = func() {
		logrus.SetOutput(oldOut)
		restoreTmp()
	}
	return env, nil
}

// setEnv sets a variable of this process and returns how to undo that.
func setEnv(key, value string) func() {
	old, had := os.LookupEnv(key)
	os.Setenv(key, value)
	return func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	}
}

// buildParams is what differs between the builds this package runs.
type buildParams struct {
	containerfile string
	output        string
	pull          *types.SystemContext
	layers        bool
	suffix        string
	log           io.Writer
}

// buildImage builds a Containerfile into store and returns the image's ID.
func buildImage(ctx context.Context, store storage.Store, env *buildEnv, p buildParams) (string, error) {
	id, _, err := imagebuildah.BuildDockerfiles(ctx, store, buildOptions(env, p), p.containerfile)
	return id, err
}

// buildOptions are the buildah options every build of this service uses:
// chroot isolation (no runc, works rootless), RUN steps in the host network
// namespace with a no-op network backend, the process's own resource limits,
// the build's own signature policy, and every message into the log.
func buildOptions(env *buildEnv, p buildParams) define.BuildOptions {
	return define.BuildOptions{
		ContextDirectory:        env.contextDir,
		PullPolicy:              define.PullIfNewer,
		Isolation:               define.IsolationChroot,
		Output:                  p.output,
		Out:                     p.log,
		Err:                     p.log,
		ReportWriter:            p.log,
		SystemContext:           p.pull,
		SignaturePolicyPath:     env.policyPath,
		CommonBuildOpts:         &define.CommonBuildOptions{Ulimit: processUlimits()},
		NamespaceOptions:        define.NamespaceOptions{{Name: string(specs.NetworkNamespace), Host: true}},
		ConfigureNetwork:        define.NetworkEnabled,
		NetworkInterface:        noNetwork{},
		OutputFormat:            define.OCIv1ImageManifest,
		Layers:                  p.layers,
		ContainerSuffix:         p.suffix,
		RemoveIntermediateCtrs:  true,
		ForceRmIntermediateCtrs: true,
		MaxPullPushRetries:      registryRetries,
		PullPushRetryDelay:      registryRetryDelay,
	}
}

// processUlimits pins the open-files and processes limits of RUN steps to
// this process's own. buildah would otherwise raise them to 1048576, which
// fails without CAP_SYS_RESOURCE (rootless, or a sandbox with a lower hard
// limit).
func processUlimits() []string {
	var limits []string
	for name, resource := range map[string]int{"nofile": unix.RLIMIT_NOFILE, "nproc": unix.RLIMIT_NPROC} {
		var rl unix.Rlimit
		if err := unix.Getrlimit(resource, &rl); err == nil && rl.Max < define.RLimitDefaultValue {
			limits = append(limits, fmt.Sprintf("%s=%d:%d", name, rl.Cur, rl.Max))
		}
	}
	slices.Sort(limits)
	return limits
}

// pushImage pushes a local image to target and returns the pushed manifest's
// digest.
func pushImage(ctx context.Context, store storage.Store, env *buildEnv, imageID, target string, sys *types.SystemContext, log io.Writer) (string, error) {
	dest, err := docker.ParseReference("//" + target)
	if err != nil {
		return "", fmt.Errorf("target image: %w", err)
	}
	fmt.Fprintf(log, "Pushing %s\n", target)
	_, digest, err := bh.Push(ctx, imageID, dest, bh.PushOptions{
		Store:               store,
		SystemContext:       sys,
		SignaturePolicyPath: env.policyPath,
		ReportWriter:        log,
		ManifestType:        define.OCIv1ImageManifest,
		Compression:         archive.Gzip,
		MaxRetries:          registryRetries,
		RetryDelay:          registryRetryDelay,
	})
	if err != nil {
		return "", fmt.Errorf("pushing %s: %s", target, workerspec.Reason(err))
	}
	return digest.String(), nil
}

// errCancelled is the reason of a build stopped by its context.
var errCancelled = errors.New("the build was cancelled")

// buildError is the one-line reason of a failed build. For a failed step of
// the Containerfile it names the step ("the pip step"), buildah's cause
// ("exit status 1") and the last line the step printed: the generated
// Containerfile makes that line say what is missing ("the base image has no
// pip"), and a package manager's last line is usually its complaint.
func buildError(err error, containerfile, lastLine string) error {
	if errors.Is(err, context.Canceled) {
		return errCancelled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("the build ran past its deadline")
	}
	msg := err.Error()
	for _, line := range strings.Split(containerfile, "\n") {
		marker := `building at STEP "` + line + `": `
		if i := strings.Index(msg, marker); line != "" && i >= 0 {
			cause, _, _ := strings.Cut(msg[i+len(marker):], ": subprocess exited")
			msg = fmt.Sprintf("%s failed (%s)", stepName(line), cause)
			break
		}
	}
	if lastLine != "" {
		msg += ": " + lastLine
	}
	return errors.New(workerspec.Reason(errors.New(msg)))
}

// stepName names a Containerfile line for a person: the package manager a
// RUN line runs, or the line itself, shortened.
func stepName(line string) string {
	fixed, _, _ := strings.Cut(line, "'") // the packages are the quoted part
	for _, m := range []struct{ command, name string }{
		{"apt-get install", "APT"}, {"conda install", "conda"}, {"pip install", "pip"},
	} {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(fixed, m.command) {
			return "the " + m.name + " step"
		}
	}
	if len(line) > 60 {
		line = line[:60] + "…"
	}
	return fmt.Sprintf("step %q", line)
}

// syncWriter serialises writes: buildah writes step output, errors and
// progress reports from several goroutines to the same log.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// tailWriter passes everything through to a log and remembers the last
// complete line a build step printed, which names the cause when it fails.
type tailWriter struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
	last    string
}

func newTailWriter(w io.Writer) *tailWriter { return &tailWriter{w: w} }

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(t.partial[:i])); !isBuildahNoise(line) {
			t.last = line
		}
		t.partial = t.partial[i+1:]
	}
	return t.w.Write(p)
}

// buildahNoise matches the lines buildah itself writes around a step's
// output, which say nothing about why the step failed.
var buildahNoise = regexp.MustCompile(`^$|^subprocess exited with status \d+$|^STEP \d+/\d+: |^--> |^time="|^error building at STEP `)

// isBuildahNoise reports whether a log line is buildah's own.
func isBuildahNoise(line string) bool {
	return buildahNoise.MatchString(line)
}

// lastLine is the last complete line written that buildah did not write
// itself.
func (t *tailWriter) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}
