package worker

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

	"imagehub/buildah/recipe"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
)

// Registry requests that fail for a network reason are tried this many more
// times, this far apart; authentication and "not found" errors are not.
const (
	registryRetries    = 2
	registryRetryDelay = 2 * time.Second
)

// Run builds one recipe and pushes it: the whole job of one
// build-worker process. When spec.Target already exists in its registry with
// the digest imagehub recorded for it (spec.KnownDigest) it only says so
// ("up to date") and reports that digest; a tag with any other digest was
// written by somebody else and is built and pushed over. Otherwise it
// reads the base image's user, generates the Containerfile, builds it with
// buildah (RUN steps isolated under runc in a network of the build's own, see
// runIsolation and network.go; a layer cache shared by all builds
// in spec.Storage), lists the built image's packages, smoke-tests it
// (smoke.go; a failure ends the build before the push) and pushes the
// result, calling events at each phase and at each step of the
// Containerfile (progress.go).
//
// Everything a person should see goes to log: the Containerfile, the build
// steps with their output, and the push. Credentials never do: they go to
// the registries only through containers/image's configuration, and to the
// package mirrors only as build secrets (packages.go); whatever a package
// manager prints, the mirrors' passwords are taken out of the log and the
// error (redact.go). The error returned is one line, fit to be the build's
// failure reason; the caller reports the failure event.
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
// Inside it, runc (rootless) and the kernel's own overlay (vfs where that is
// refused) work without runc or fuse-overlayfs. The storage folders and
// spec.TmpDir must belong to that user. HOME is not needed. XDG_RUNTIME_DIR
// must be unset or name an existing folder of that user: containers/storage
// checks it and fails otherwise. TestRootlessWorker runs exactly this.
func Run(ctx context.Context, spec workerspec.Spec, log io.Writer, events func(workerspec.Event)) error {
	if events == nil {
		events = func(workerspec.Event) {}
	}
	redact := newRedactor(spec.Mirrors)
	redacting := redact.Writer(log)
	defer redacting.Flush()
	err := run(ctx, spec, &syncWriter{w: redacting}, events)
	return redact.Error(err)
}

// run is Run with its log made safe for the mirrors' passwords.
func run(ctx context.Context, spec workerspec.Spec, log io.Writer, events func(workerspec.Event)) error {
	target, err := remote.NormalizeReference(spec.Target)
	if err != nil {
		return fmt.Errorf("target image: %w", err)
	}
	digest, exists, err := outboundPolicy(spec).TagExists(ctx, target, spec.PushAuth, isInsecure(target, spec.Insecure))
	if err != nil {
		return fmt.Errorf("checking whether %s exists: %s", target, workerspec.Reason(err))
	}
	if exists && digest == spec.KnownDigest {
		moved, err := baseMoved(ctx, spec, target, log, events)
		if err != nil {
			return err
		}
		if !moved {
			fmt.Fprintf(log, "%s is up to date (%s): nothing to build.\n", target, digest)
			events(workerspec.Event{Phase: workerspec.PhaseDone, UpToDate: true, Digest: digest})
			return nil
		}
	} else if exists {
		fmt.Fprintf(log, "%s exists as %s, which is not what imagehub recorded for it (%s): building it again.\n",
			target, digest, cmp.Or(spec.KnownDigest, "nothing"))
	}
	events(workerspec.Event{Phase: workerspec.PhaseBuilding})
	digest, listed, err := buildAndPush(ctx, spec, target, log, events)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "Pushed %s@%s\n", target, digest)
	events(workerspec.Event{Phase: workerspec.PhaseDone, Digest: digest, PackagesListed: listed})
	return nil
}

// baseMoved reports whether the base image's reference names another
// manifest than the one that target's recorded build was built on
// (spec.KnownBaseDigest): then the same recipe is built again, on the
// base as it is now. When it has not moved, it reports the base's digest
// (PhaseBase). A recorded build that did not record its base (it ran before
// imagehub did) counts as moved, once: the new build records it. A base that
// cannot be looked up is an error, never taken as unchanged.
func baseMoved(ctx context.Context, spec workerspec.Spec, target string, log io.Writer, events func(workerspec.Event)) (bool, error) {
	if spec.KnownBaseDigest == "" {
		fmt.Fprintf(log, "imagehub did not record which base image %s was built on: building it again.\n", target)
		return true, nil
	}
	base, err := remote.NormalizeReference(spec.BaseImage)
	if err != nil {
		return false, fmt.Errorf("base image: %w", err)
	}
	digest, exists, err := outboundPolicy(spec).TagExists(ctx, base, spec.PullAuth, isInsecure(base, spec.Insecure))
	if err != nil {
		return false, fmt.Errorf("checking the base image %s: %s", base, workerspec.Reason(err))
	}
	if !exists {
		return false, fmt.Errorf("base image %s: its registry does not have it", base)
	}
	if digest != spec.KnownBaseDigest {
		fmt.Fprintf(log, "The base image %s moved since %s was built on it (%s, now %s): building it again.\n",
			base, target, spec.KnownBaseDigest, digest)
		return true, nil
	}
	events(workerspec.Event{Phase: workerspec.PhaseBase, BaseDigest: digest})
	return false, nil
}

// buildAndPush does the work of a build that is not up to date: it builds,
// lists the built image's packages (listPackages; listed says whether it
// could), smoke-tests the image (smokeTest) and pushes.
func buildAndPush(ctx context.Context, spec workerspec.Spec, target string, log io.Writer, events func(workerspec.Event)) (digest string, listed bool, err error) {
	env, err := enterBuildEnv(spec, log)
	if err != nil {
		return "", false, err
	}
	defer env.leave()
	pkgs, err := preparePackages(ctx, spec, log)
	if err != nil {
		return "", false, err
	}
	network, err := startBuildNet(spec.AllowCIDRs, pkgs.mirrors)
	if err != nil {
		return "", false, err
	}
	defer network.Close()
	// The network's rules and slirp4netns are set up while buildah starts;
	// RUN steps wait for them, and a failure there stops the build.
	buildCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	env.netns = network.Path()
	env.awaitNetwork = func() {
		if err := network.Wait(); err != nil {
			stop(err)
		}
	}
	if spec.Limits.MemoryBytes > 0 && memoryLimit(spec.Limits) == 0 {
		fmt.Fprintln(log, "imagehub: the build's memory limit is not enforced: a rootless worker cannot create a cgroup on this host")
	}
	store, err := OpenStore(spec.Storage)
	if err != nil {
		return "", false, err
	}
	base, err := inspectBase(ctx, spec)
	if err != nil {
		return "", false, err
	}
	events(workerspec.Event{Phase: workerspec.PhaseBase, BaseDigest: base.Digest})
	containerfile, text, err := writeRecipeContainerfile(spec, base, pkgs.setup, log)
	if err != nil {
		return "", false, err
	}
	cache, err := cacheRepos(spec.CacheRepo)
	if err != nil {
		return "", false, err
	}
	tail := newTailWriter(log)
	imageID, err := buildImage(buildCtx, store, env, buildParams{
		containerfile: containerfile,
		text:          text,
		output:        target,
		pull:          env.systemContext(spec.BaseImage, spec.Insecure),
		layers:        true,
		cacheRepos:    cache,
		suffix:        ContainerSuffix(spec.BuildID),
		log:           newStepWatcher(tail, events),
		limits:        spec.Limits,
		secrets:       pkgs.secrets,
	})
	if err := network.Wait(); err != nil {
		return "", false, err
	}
	if err != nil {
		return "", false, buildError(err, text, tail.lastLine())
	}
	if err := recordUse(store, spec.Storage.GraphRoot, imageID); err != nil {
		fmt.Fprintf(log, "imagehub: recording the layer cache's use: %s\n", workerspec.Reason(err))
	}
	listed = listPackages(store, imageID, log, events)
	if err := smokeTest(ctx, store, env, spec, imageID, log); err != nil {
		return "", false, err
	}
	go network.Close() // no RUN step nor smoke test is left: it ends during the push
	events(workerspec.Event{Phase: workerspec.PhasePushing})
	digest, err = pushImage(ctx, store, env, imageID, target, env.systemContext(target, spec.Insecure), log)
	return digest, listed, err
}

// inspectBase looks the base image up in its registry: its digest, user
// and ONBUILD triggers.
func inspectBase(ctx context.Context, spec workerspec.Spec) (remote.ImageInfo, error) {
	base, err := remote.NormalizeReference(spec.BaseImage)
	if err != nil {
		return remote.ImageInfo{}, fmt.Errorf("base image: %w", err)
	}
	info, err := outboundPolicy(spec).Inspect(ctx, base, spec.PullAuth, isInsecure(base, spec.Insecure))
	if err != nil {
		return remote.ImageInfo{}, fmt.Errorf("base image %s: %s", base, workerspec.Reason(err))
	}
	return info, nil
}

// writeRecipeContainerfile generates the recipe's Containerfile on the base
// image as inspected, with the package setup, restoring the base image's
// own user at the end, writes it into the build's temporary folder and
// shows it in the log (it never holds a secret).
func writeRecipeContainerfile(spec workerspec.Spec, base remote.ImageInfo, setup recipe.Setup, log io.Writer) (path, text string, err error) {
	if err := refuseOnBuild(base.OnBuild); err != nil {
		return "", "", err
	}
	// FROM names the digest just inspected, so that the image built on is
	// the one whose user and triggers were read, even from a registry that
	// answers the pull with another image than the look-up.
	from, err := remote.PinDigest(base.Reference, base.Digest)
	if err != nil {
		return "", "", fmt.Errorf("base image %s: %w", base.Reference, err)
	}
	if err := recipe.CheckContainerfileInputs(from, base.User); err != nil {
		return "", "", err
	}
	text = recipe.Containerfile(from, spec.Packages, base.User, setup)
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

// isInsecure reports whether ref's registry host is one of the insecure ones.
func isInsecure(ref string, insecure []string) bool {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false
	}
	return slices.Contains(insecure, reference.Domain(named))
}

// buildEnv is what a buildah build of this package runs in, all inside the
// build's temporary folder: a signature policy of its own, an empty build
// context, the registry credentials of this build only, runc's state, and
// the /sys that RUN steps see; with TMPDIR and the process-wide logrus
// logger redirected until leave is called.
type buildEnv struct {
	policyPath     string
	contextDir     string
	authFile       string
	registriesConf string
	runcRoot       string
	emptySys       string
	// policy says where the worker's own registry requests may go.
	policy *remote.Policy
	// netns is the path of the build's network namespace, awaitNetwork
	// what each RUN step waits for first: the namespace's rules and
	// slirp4netns in place.
	netns        string
	awaitNetwork func()
	// uids and gids map RUN steps' ids to subordinate ones.
	uids, gids []specs.LinuxIDMapping
	leave      func()
}

// insecureAcceptAnything is the signature policy of this service: it builds
// from the images an administrator chose and checks no signatures.
const insecureAcceptAnything = `{"default":[{"type":"insecureAcceptAnything"}]}`

// enterBuildEnv prepares spec.TmpDir for a build and points TMPDIR and logrus
// at it and at log until leave is called. The folder is opened to others for
// traversal only (0711): runc, in the build's user namespace, mounts the
// container's root file system from below it.
func enterBuildEnv(spec workerspec.Spec, log io.Writer) (*buildEnv, error) {
	tmp := spec.TmpDir
	env := &buildEnv{
		policyPath:     filepath.Join(tmp, "policy.json"),
		contextDir:     filepath.Join(tmp, "context"),
		authFile:       filepath.Join(tmp, "auth.json"),
		registriesConf: filepath.Join(tmp, "registries.conf"),
		runcRoot:       filepath.Join(tmp, "runc"),
		emptySys:       filepath.Join(tmp, "sys"),
		policy:         outboundPolicy(spec),
	}
	var err error
	if env.uids, env.gids, err = runIDMappings(); err != nil {
		return nil, err
	}
	err = errors.Join(
		os.Chmod(tmp, 0o711),
		os.MkdirAll(env.contextDir, 0o755),
		os.MkdirAll(env.runcRoot, 0o700),
		os.MkdirAll(filepath.Join(env.emptySys, "fs", "cgroup"), 0o755),
		os.WriteFile(env.policyPath, []byte(insecureAcceptAnything), 0o644),
		os.WriteFile(env.registriesConf, nil, 0o644),
		writeAuthFile(env.authFile, spec),
	)
	if err != nil {
		return nil, fmt.Errorf("build folder: %w", err)
	}
	restoreTmp := setEnv("TMPDIR", tmp)
	oldOut := logrus.StandardLogger().Out
	logrus.SetOutput(log)
	env.leave = func() {
		logrus.SetOutput(oldOut)
		restoreTmp()
	}
	return env, nil
}

// writeAuthFile writes the build's credentials as a containers auth file
// (0600), each under the one registry host it belongs to: the pull secret
// under the base image's host, the push credential under the target's. No
// other host is ever offered them, and the host's default auth file
// (/run/containers/<uid>/auth.json, which may belong to root) is never read.
func writeAuthFile(path string, spec workerspec.Spec) error {
	auths := map[string]map[string]string{}
	add := func(ref string, a *remote.Auth) {
		norm, err := remote.NormalizeReference(ref)
		if a == nil || err != nil {
			return
		}
		auths[remote.Host(norm)] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))}
	}
	add(spec.BaseImage, spec.PullAuth)
	add(spec.Target, spec.PushAuth)
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// systemContext is the containers/image configuration for reaching ref's
// registry from a build: the outbound policy, the build's auth file and no
// system-wide registry configuration.
func (env *buildEnv) systemContext(ref string, insecure []string) *types.SystemContext {
	sys := env.policy.SystemContext(ref, nil, isInsecure(ref, insecure))
	sys.DockerAuthConfig = nil // the auth file decides, host by host
	sys.AuthFilePath = env.authFile
	sys.SystemRegistriesConfPath = env.registriesConf
	return sys
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
	// containerfile is the Containerfile's path, text what it holds.
	containerfile string
	text          string
	output        string
	pull          *types.SystemContext
	layers        bool
	suffix        string
	log           io.Writer
	limits        workerspec.Limits
	// secrets are the build secrets RUN steps may mount.
	secrets []string
	// cacheRepos are where layers are looked up and pushed to, besides
	// the store (Spec.CacheRepo).
	cacheRepos []reference.Named
}

// cacheRepos parses Spec.CacheRepo; empty means none.
func cacheRepos(repo string) ([]reference.Named, error) {
	if repo == "" {
		return nil, nil
	}
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil || !reference.IsNameOnly(named) {
		return nil, fmt.Errorf("the layer cache's repository %q is not HOST/PATH/NAME", repo)
	}
	return []reference.Named{named}, nil
}

// buildImage builds a Containerfile into store and returns the image's ID.
func buildImage(ctx context.Context, store storage.Store, env *buildEnv, p buildParams) (string, error) {
	id, _, err := imagebuildah.BuildDockerfiles(ctx, store, buildOptions(env, p), p.containerfile)
	return id, err
}

// buildOptions are the buildah options every build of this service uses:
// RUN steps isolated as runIsolation says, once the build's network is
// ready (buildah's step log, stepLog, holds each RUN step until then), the
// build's signature policy, and every message into the log.
func buildOptions(env *buildEnv, p buildParams) define.BuildOptions {
	iso := runIsolation(env, p.limits, p.secrets)
	var logSteps func(string, ...any) // buildah's own step log
	if env.netns != "" {
		logSteps = newStepLog(p.log, p.text, env.awaitNetwork).log
	}
	return define.BuildOptions{
		ContextDirectory:        env.contextDir,
		PullPolicy:              define.PullIfNewer,
		Isolation:               iso.kind,
		Runtime:                 "runc",
		RuntimeArgs:             []string{"--root", env.runcRoot},
		Output:                  p.output,
		Out:                     p.log,
		Err:                     p.log,
		Log:                     logSteps,
		ReportWriter:            p.log,
		SystemContext:           p.pull,
		SignaturePolicyPath:     env.policyPath,
		CommonBuildOpts:         iso.common,
		NamespaceOptions:        iso.namespaces,
		IDMappingOptions:        iso.ids,
		TransientMounts:         []string{iso.sysMount},
		ConfigureNetwork:        iso.network,
		NetworkInterface:        noNetwork{},
		OutputFormat:            define.OCIv1ImageManifest,
		Layers:                  p.layers,
		CacheFrom:               p.cacheRepos,
		CacheTo:                 p.cacheRepos,
		ContainerSuffix:         p.suffix,
		RemoveIntermediateCtrs:  true,
		ForceRmIntermediateCtrs: true,
		MaxPullPushRetries:      registryRetries,
		PullPushRetryDelay:      registryRetryDelay,
	}
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
