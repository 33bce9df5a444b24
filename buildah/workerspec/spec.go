// Package workerspec is the contract between the server and a build worker
// (`imagehub build-worker`): the spec the server writes for one build, the
// events the worker sends back on their own channel, and the result of a
// clean-up run. Both sides import it; it imports neither.
package workerspec

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"imagehub/buildah/recipe"
	"imagehub/buildah/remote"
	"imagehub/store"
)

// Storage says where the shared containers/storage store lives. All workers
// share one store: its locks make that safe, and it is the layer cache.
type Storage struct {
	GraphRoot string `json:"graphRoot"`
	RunRoot   string `json:"runRoot"`
	// Driver is "overlay" or "vfs"; empty picks overlay where the kernel allows it.
	Driver string `json:"driver,omitempty"`
}

// Spec is everything one build-worker needs to build and push one image.
// The server writes it to a 0600 file; the worker reads it and deletes the file.
type Spec struct {
	BuildID   int64           `json:"buildId"`
	Storage   Storage         `json:"storage"`
	TmpDir    string          `json:"tmpDir"`
	BaseImage string          `json:"baseImage"`
	Packages  recipe.Packages `json:"packages"`
	// Target is the reference to push, registry/prefix/name:tag.
	Target   string       `json:"target"`
	PullAuth *remote.Auth `json:"pullAuth,omitempty"`
	PushAuth *remote.Auth `json:"pushAuth,omitempty"`
	// Insecure lists registry hosts that may be reached over plain http.
	Insecure []string `json:"insecure,omitempty"`
	// AllowCIDRs are the private address ranges RUN steps may reach
	// (--build-allow-cidr); link-local and this host's addresses never.
	AllowCIDRs []string `json:"allowCidrs,omitempty"`
	// Limits bound what the build's RUN steps may use.
	Limits Limits `json:"limits"`
	// KnownDigest is the digest that the last succeeded build of this image
	// recorded for Target, empty when there is none. An existing Target is
	// up to date only when its digest is this one; any other is rebuilt and
	// pushed again, since somebody else wrote that tag.
	KnownDigest string `json:"knownDigest,omitempty"`
	// KnownBaseDigest is the digest of the base image that the build which
	// recorded KnownDigest was built on, empty when it recorded none. A
	// Target with KnownDigest is up to date only while BaseImage still
	// names this digest: a base that moved, or was not recorded, is built
	// on again.
	KnownBaseDigest string `json:"knownBaseDigest,omitempty"`
	// Owner owns the image: "system" or a group. It scopes the package
	// caches (recipe.CacheScope): no two owners' builds share one.
	Owner string `json:"owner"`
	// PackageCache is the folder that holds the package caches that RUN
	// steps mount (apt, pip, conda), shared by all builds; empty keeps
	// each build's caches in its temporary folder, gone with it.
	PackageCache string `json:"packageCache,omitempty"`
	// Mirrors are the package mirrors RUN steps fetch from.
	Mirrors Mirrors `json:"mirrors"`
	// SkipSmokeTest turns off the smoke test of the built image (the
	// recipe's "smokeTest": false).
	SkipSmokeTest bool `json:"skipSmokeTest,omitempty"`
	// CacheRepo, when set, is a repository (HOST/PATH/NAME, no tag) that
	// the build's layers are looked up in and pushed to (buildah's
	// cache-from and cache-to): the layer cache of workers whose store
	// starts empty (pods). The push credential is the target's: it is on
	// the same host.
	CacheRepo string `json:"cacheRepo,omitempty"`
	// EventToken, when set, makes the worker send its events as lines of
	// its log marked with it (LogEventLine) instead of on EventFD: the way
	// of a worker in a Kubernetes pod.
	EventToken string `json:"eventToken,omitempty"`
}

// Mirrors are the package mirrors of a build (empty: the sources the base
// image names) and the credentials for their hosts.
type Mirrors struct {
	PipIndexURL       string   `json:"pipIndexUrl,omitempty"`
	PipExtraIndexURL  string   `json:"pipExtraIndexUrl,omitempty"`
	CondaChannels     []string `json:"condaChannels,omitempty"`
	CondaChannelAlias string   `json:"condaChannelAlias,omitempty"`
	AptMirror         string   `json:"aptMirror,omitempty"`
	// PipAuth, CondaAuth and AptAuth are each package manager's
	// credentials, offered to its URLs on the credential's host only.
	PipAuth   *HostAuth `json:"pipAuth,omitempty"`
	CondaAuth *HostAuth `json:"condaAuth,omitempty"`
	AptAuth   *HostAuth `json:"aptAuth,omitempty"`
}

// URLs lists the mirror URLs that are set, conda's channels that are URLs
// included: where RUN steps fetch packages from.
func (m Mirrors) URLs() []string {
	var out []string
	for _, u := range append([]string{m.PipIndexURL, m.PipExtraIndexURL, m.CondaChannelAlias, m.AptMirror}, m.CondaChannels...) {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			out = append(out, u)
		}
	}
	return out
}

// HostAuth is a credential for one mirror host.
type HostAuth struct {
	// Host is host[:port], as in a URL.
	Host     string `json:"host"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// For reports whether a is the credential of rawURL's host (the same host
// and port): the only URLs it is ever offered to.
func (a *HostAuth) For(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return a != nil && err == nil && u.Host != "" && strings.EqualFold(u.Host, a.Host)
}

// Limits bound the resources of a build's RUN steps; zero means unbounded.
type Limits struct {
	// MemoryBytes caps the memory of each RUN step (a cgroup limit; root
	// workers only: a rootless worker on cgroup v1 cannot set one).
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// Processes caps the processes RUN steps may have at once (RLIMIT_NPROC
	// of the subordinate uid they run as, shared by the builds running at
	// that moment).
	Processes int `json:"processes,omitempty"`
}

// Phase is a step of a worker's progress that the server records as the
// build's status, or PhasePackages.
type Phase string

// The phases a worker reports, in order.
const (
	// PhaseBase is no status of its own: its event carries the digest of
	// the base image the build builds on (pinned in FROM), or, for an up to
	// date target, the digest the base's reference names now.
	PhaseBase     Phase = "base"
	PhaseBuilding Phase = "building"
	// PhaseStep is no status of its own either: each of its events says
	// that the build began a step of its Containerfile (Step of Steps).
	PhaseStep Phase = "step"
	// PhasePackages is no status of its own: its events, sent after the
	// image is built and before it is pushed, carry the built image's
	// installed packages, PackagesPerEvent at most each.
	PhasePackages Phase = "packages"
	PhasePushing  Phase = "pushing"
	PhaseDone     Phase = "done"
)

// MaxEventLine is the longest event line, in bytes with its newline, that
// the server reads.
const MaxEventLine = 1 << 20

// PackagesPerEvent bounds the packages of one PhasePackages event, so that
// its JSON line stays below MaxEventLine: a valid package
// (store.Package.Validate) takes at most about 3 KiB of JSON, its name and
// version 256 bytes each, with every byte escaped.
const PackagesPerEvent = 200

// Event is one structured message from a worker to the server, sent on its own
// channel (file descriptor 3 of the worker), apart from the human log.
type Event struct {
	Phase Phase `json:"phase"`
	// Digest of the pushed manifest, with PhaseDone on success.
	Digest string `json:"digest,omitempty"`
	// BaseDigest is the base image's manifest digest, with PhaseBase.
	BaseDigest string `json:"baseDigest,omitempty"`
	// UpToDate is true when the target tag already existed and nothing was built.
	UpToDate bool `json:"upToDate,omitempty"`
	// Error is a one-line reason, with PhaseDone on failure.
	Error string `json:"error,omitempty"`
	// Step and Steps, with PhaseStep, are the step of the Containerfile
	// that begins, counted from 1, and how many it has (buildah's
	// "STEP n/m").
	Step  int `json:"step,omitempty"`
	Steps int `json:"steps,omitempty"`
	// Packages are a batch of the built image's packages, with PhasePackages.
	Packages []store.Package `json:"packages,omitempty"`
	// PackagesListed, with PhaseDone on success, says that the PhasePackages
	// events before it hold the built image's whole package list (perhaps
	// none: an image without dpkg, pip or conda). Without it the build has
	// no list of its own: nothing was built, or the image could not be read.
	PackagesListed bool `json:"packagesListed,omitempty"`
}

// EventFD is the file descriptor on which a worker sends its events as JSON
// lines: the first of exec.Cmd.ExtraFiles in the local runner.
const EventFD = 3

// EventFDEnv names the environment variable that, when set, holds the file
// descriptor of the event pipe instead of EventFD (a rootless worker moves
// the pipe out of the way of its re-execution into a user namespace).
const EventFDEnv = "IMAGEHUB_EVENTS_FD"

// CleanupResult is what `imagehub build-worker --cleanup ID` prints on
// standard output, as one JSON object.
type CleanupResult struct {
	// Removed counts the build's working containers that were deleted.
	Removed int `json:"removed"`
}

// CacheCleanup is what `imagehub build-worker --clean-cache` does to the
// layer cache, the store the workers share.
type CacheCleanup struct {
	// Limit is the most the store may take on disk, in bytes; past it the
	// least recently used images are removed. Zero means no limit.
	Limit int64
	// KeepRecent keeps the images used this recently, whatever the limit.
	KeepRecent time.Duration
	// RemoveRepositories are repositories ("host/path/name", no tag) whose
	// images are removed first: those of images deleted from imagehub.
	RemoveRepositories []string
}

// CacheResult is what `imagehub build-worker --clean-cache` and
// `--cache-usage` print on standard output, as one JSON object.
type CacheResult struct {
	// Size is what the store takes on disk afterwards, in bytes.
	Size int64 `json:"size"`
	// Images counts the images it holds afterwards.
	Images int `json:"images"`
	// Removed counts the images removed, and Freed the bytes that freed.
	Removed int   `json:"removed"`
	Freed   int64 `json:"freed"`
}

// Read reads the spec file the server wrote for this worker and
// deletes it at once, so that the credentials in it do not outlive the
// moment they are needed on disk.
func Read(path string) (Spec, error) {
	spec, err := Load(path)
	if err != nil {
		return Spec{}, err
	}
	if err := os.Remove(path); err != nil {
		return Spec{}, fmt.Errorf("removing the worker spec: %w", err)
	}
	return spec, nil
}

// Load reads a spec file and leaves it in place: the way of a worker in a
// pod, whose spec is a file of the build's Secret, on a read-only volume
// that goes with the pod.
func Load(path string) (Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("reading the worker spec: %w", err)
	}
	var spec Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return Spec{}, fmt.Errorf("parsing the worker spec: %w", err)
	}
	return spec, nil
}

// Write writes a worker's spec to a file only its owner can read:
// it may hold registry credentials, which must not appear on a command line.
func Write(path string, s Spec) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing the worker spec: %w", err)
	}
	// A file that existed before keeps its mode through OpenFile.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing the worker spec: %w", err)
	}
	_, err = f.Write(data)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("writing the worker spec: %w", err)
	}
	return nil
}

// MaxReasonLength bounds a one-line failure reason, in bytes.
const MaxReasonLength = 400

// Reason flattens an error message to a single line of bounded length.
func Reason(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > MaxReasonLength {
		s = strings.ToValidUTF8(s[:MaxReasonLength], "") + "…"
	}
	return s
}
