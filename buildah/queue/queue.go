package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/mounts"
	"imagehub/buildah/recipe"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// Defaults of Config.
const (
	DefaultConcurrency = 2
	DefaultDeadline    = 2 * time.Hour
	DefaultPoll        = 5 * time.Second
	// DefaultMaxLogSize is how much of a worker's output a build's log keeps
	// before the build is stopped: far more than any honest build writes,
	// little enough that a worker flooding its output cannot fill the disk.
	DefaultMaxLogSize = 50 << 20
)

// interruptedLine is what a build's log says when the server stopped under it.
const interruptedLine = "imagehub: the server stopped while this build was running; it was interrupted"

// interruptedReason is the recorded reason of an interrupted build.
const interruptedReason = "the server stopped while this build was running"

// Config is what a Queue needs; Store, Runner and Logs are required.
type Config struct {
	Store  *store.Store
	Runner Runner
	Logs   *buildlog.Hub
	// Storage is the containers/storage store the workers share.
	Storage workerspec.Storage
	// Concurrency is how many builds run at once; zero means 2.
	Concurrency int
	// Deadline is how long one build may run; zero means 2 h.
	Deadline time.Duration
	// MaxLogSize is how many bytes of its worker's output a build's log
	// keeps; a worker that writes more is stopped and its build fails.
	// Zero means DefaultMaxLogSize.
	MaxLogSize int64
	// PushAuth is the credential for the registry builds are pushed to.
	PushAuth *remote.Auth
	// RegistryPullAuth, when set, is a read-only credential of the registry
	// builds are pushed to (the embedded registry's pull account): a base
	// image on that registry whose recipe names no pull secret is pulled
	// with it.
	RegistryPullAuth *remote.Auth
	// Insecure lists registry hosts reached over plain http.
	Insecure []string
	// AllowCIDRs are private address ranges RUN steps may reach
	// (--build-allow-cidr); by default they reach none.
	AllowCIDRs []string
	// Limits bound each build's RUN steps.
	Limits workerspec.Limits
	// PackageCache holds the package caches (apt, pip, conda) that builds
	// share; empty keeps each build's caches in its temporary folder.
	PackageCache string
	// TmpRoot holds each build's temporary folder; empty means the system's.
	TmpRoot string
	// Poll is how often the queue looks for queued builds even when nobody
	// called Notify, so that no build waits forever; zero means 5 s.
	Poll time.Duration
	// Logger gets what goes wrong outside any build's log; nil means
	// slog.Default().
	Logger *slog.Logger
	// Observer is told how builds end (metrics); nil tells nobody.
	Observer Observer
	// Hold, when set, is asked before queued builds start, at each pass of
	// the queue: a non-empty answer holds them and is what they wait for,
	// "waiting for disk space: …" (see Waiting).
	Hold func() string
	// Finished, when set, is called with each build once its state is final.
	Finished func(ctx context.Context, b *store.Build)
	// CacheSize bounds the layer cache in bytes (--cache-size): after each
	// build, once no build runs, the runner's workers remove the least
	// recently used images past it (see CacheCleaner). Zero: no bound.
	CacheSize int64
}

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Deadline <= 0 {
		c.Deadline = DefaultDeadline
	}
	if c.MaxLogSize <= 0 {
		c.MaxLogSize = DefaultMaxLogSize
	}
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.TmpRoot == "" {
		c.TmpRoot = filepath.Join(os.TempDir(), "imagehub-builds")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	return c
}

// Queue runs the builds queued in the store, at most Concurrency at once and
// oldest first. The store is the queue: a build waits there as "queued" until
// a slot is free, so nothing is lost when the server stops. The Queue only
// knows the Runner interface, not where workers run.
type Queue struct {
	cfg  Config
	wake chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex // also serialises starting a build with cancelling it
	active map[int64]*activeBuild
	// chores wait for a moment when no build runs (chores.go); forget lists
	// the repositories whose images the next clean-up of the layer cache
	// removes; waiting is what queued builds wait for now.
	chores  []chore
	forget  []string
	waiting string

	// held is Config.Hold's last answer; only Run's goroutine uses it.
	held string
}

// activeBuild is a build this process has started and not yet finished.
type activeBuild struct {
	id int64
	// started is when the build started, which its deadline counts from.
	started time.Time
	stop    chan struct{} // closed to stop the build early
	once    sync.Once
	// Why it was stopped; set before stop is closed. leave is set when the
	// server stops and the worker goes on (leaveRunning).
	stopStatus store.BuildStatus
	leave      bool
	done       chan struct{} // closed when the build's state is final
	// resumed is set for a build followed again after a restart
	// (resume.go): its events come again from the start.
	resumed bool
}

func newActiveBuild(id int64, started time.Time) *activeBuild {
	return &activeBuild{id: id, started: started, stop: make(chan struct{}), done: make(chan struct{})}
}

// stopWith stops the build with a final status; the first call wins.
func (a *activeBuild) stopWith(st store.BuildStatus) {
	a.once.Do(func() {
		a.stopStatus = st
		close(a.stop)
	})
}

// outcome is how a stopped build ended.
func (a *activeBuild) outcome() outcome {
	if a.stopStatus == store.BuildInterrupted {
		return outcome{status: a.stopStatus, reason: interruptedReason}
	}
	return outcome{status: a.stopStatus}
}

// stopped reports whether the build was told to stop.
func (a *activeBuild) stopped() bool {
	select {
	case <-a.stop:
		return true
	default:
		return false
	}
}

// New returns a queue; call Recover and then Run.
func New(cfg Config) *Queue {
	return &Queue{cfg: cfg.withDefaults(), wake: make(chan struct{}, 1), active: map[int64]*activeBuild{}}
}

// Notify tells the queue that a build was queued, so that it need not wait
// for its next look at the store.
func (q *Queue) Notify() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run starts queued builds whenever a slot is free, until ctx ends. Then it
// stops the running builds (they become interrupted), or lets go of them
// when the runner can follow them again after a restart (Reattacher), and
// returns once their state is recorded or they are let go.
func (q *Queue) Run(ctx context.Context) error {
	poll := time.NewTicker(q.cfg.Poll)
	defer poll.Stop()
	for {
		q.fill(ctx)
		select {
		case <-ctx.Done():
			q.shutdown()
			q.wg.Wait()
			return nil
		case <-q.wake:
		case <-poll.C:
		}
	}
}

// fill runs the chores that are due, then starts the oldest queued builds
// while slots are free and nothing holds them.
func (q *Queue) fill(ctx context.Context) {
	if q.hold(ctx) != "" || q.free() == 0 {
		return
	}
	builds, err := q.cfg.Store.ListBuildsByStatus(ctx, store.BuildQueued)
	if err != nil {
		if ctx.Err() == nil {
			q.cfg.Logger.Error("listing queued builds", "err", err)
		}
		return
	}
	for _, b := range builds {
		if q.free() == 0 || ctx.Err() != nil {
			return
		}
		q.start(ctx, b)
	}
}

// free is the number of builds that may start now.
func (q *Queue) free() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return max(q.cfg.Concurrency-len(q.active), 0)
}

// start marks a queued build running and runs it. A build cancelled in the
// meantime is no longer queued and is skipped.
func (q *Queue) start(ctx context.Context, b *store.Build) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.cfg.Store.StartBuild(ctx, b.ID); err != nil {
		if store.ErrorCode(err) != store.ECONFLICT && ctx.Err() == nil {
			q.cfg.Logger.Error("starting build", "build", b.ID, "err", err)
		}
		return
	}
	a := newActiveBuild(b.ID, time.Now())
	q.active[b.ID] = a
	q.wg.Add(1)
	go q.run(context.WithoutCancel(ctx), a, b)
}

// release forgets a finished build and frees its slot.
func (q *Queue) release(a *activeBuild) {
	q.mu.Lock()
	delete(q.active, a.id)
	q.mu.Unlock()
	close(a.done)
	q.wg.Done()
	q.Notify()
}

// Cancel stops a build. A queued build is cancelled at once; a running one
// has its worker killed and its working containers removed, and Cancel
// returns when its state is recorded. A build that has finished cannot be
// cancelled (ECONFLICT).
func (q *Queue) Cancel(ctx context.Context, id int64) error {
	a, err := q.cancelInactive(ctx, id)
	if err != nil || a == nil {
		return err
	}
	a.stopWith(store.BuildCancelled)
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cancelInactive cancels a build that this process is not running and
// returns nil, or returns the running build for the caller to stop. Holding
// q.mu keeps the build from being started meanwhile.
func (q *Queue) cancelInactive(ctx context.Context, id int64) (*activeBuild, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if a := q.active[id]; a != nil {
		return a, nil
	}
	b, err := q.cfg.Store.FindBuild(ctx, id)
	if err != nil {
		return nil, err
	}
	switch b.Status {
	case store.BuildQueued:
		return nil, q.endInactive(ctx, b, store.BuildCancelled, "", fmt.Sprintf("imagehub: build %d was cancelled before it started", id))
	case store.BuildRunning, store.BuildPushing:
		// Left over by an earlier run of the server, before Recover saw it.
		return nil, q.reap(ctx, b, store.BuildCancelled, "", fmt.Sprintf("imagehub: build %d was cancelled", id))
	}
	return nil, &store.Error{Code: store.ECONFLICT, Message: fmt.Sprintf("Build %d has already finished (%s).", id, b.Status)}
}

// Recover takes over the builds that an earlier run of the server left
// running or pushing. With a runner whose workers outlive the server
// (Reattacher), a build whose worker is still there is followed again
// (resume.go). The others' workers are killed, their working containers
// removed, and they become interrupted, with a line in their log saying why.
// Queued builds simply run. Call it before Run.
func (q *Queue) Recover(ctx context.Context) error {
	builds, err := q.cfg.Store.ListBuildsByStatus(ctx, store.BuildRunning, store.BuildPushing)
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range builds {
		if q.isActive(b.ID) {
			continue
		}
		line := interruptedLine
		resumed, err := q.resume(ctx, b)
		if resumed {
			continue
		} else if err != nil {
			q.cfg.Logger.Error("following a build again", "build", b.ID, "err", err)
			line += "\nimagehub: following its worker again: " + workerspec.Reason(err)
		}
		errs = append(errs, q.reap(ctx, b, store.BuildInterrupted, interruptedReason, line))
	}
	if sw, ok := q.cfg.Runner.(Sweeper); ok {
		if err := sw.Sweep(ctx, q.isActive); err != nil {
			errs = append(errs, fmt.Errorf("stopping workers of no running build: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (q *Queue) isActive(id int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active[id] != nil
}

// reap ends a build whose worker this process did not start. A failure to
// clean up after the worker is told in the build's log and the server's, but
// does not keep the build from ending.
func (q *Queue) reap(ctx context.Context, b *store.Build, st store.BuildStatus, reason, line string) error {
	if err := q.cfg.Runner.Reap(ctx, b.ID, q.cfg.Logs.Dir(b.ID)); err != nil {
		q.cfg.Logger.Error("cleaning up after a worker", "build", b.ID, "err", err)
		line += "\nimagehub: cleaning up after its worker: " + workerspec.Reason(err)
	}
	q.removeTmpDir(b.ID)
	return q.endInactive(ctx, b, st, reason, line)
}

// removeTmpDir removes a build's temporary folder once its worker is gone,
// unmounting what a killed worker left mounted there.
func (q *Queue) removeTmpDir(id int64) {
	if err := mounts.RemoveAll(q.tmpDir(id)); err != nil {
		q.cfg.Logger.Error("removing build folder", "build", id, "err", err)
	}
}

// endInactive gives a build that is not running here its final state, with
// a last line in its log.
func (q *Queue) endInactive(ctx context.Context, b *store.Build, st store.BuildStatus, reason, line string) error {
	q.appendLog(b.ID, line)
	err := q.cfg.Store.FinishBuild(ctx, b.ID, st, "", reason)
	if err == nil {
		q.cfg.Observer.BuildFinished(st, 0)
	}
	return errors.Join(err, q.cfg.Logs.Close(b.ID, st))
}

// appendLog adds lines to a build's log.
func (q *Queue) appendLog(id int64, text string) {
	w, err := q.cfg.Logs.Writer(id)
	if err != nil {
		q.cfg.Logger.Error("writing build log", "build", id, "err", err)
		return
	}
	fmt.Fprintln(w, text)
	w.Close()
}

// outcome is how a build ended.
type outcome struct {
	status   store.BuildStatus
	digest   string
	reason   string
	upToDate bool
	// packages is the package list of a success, nil when the worker read
	// none (see store.SucceedBuild).
	packages []store.Package
	// detached is set when the server stopped and let the worker go on:
	// the build has no outcome yet.
	detached bool
}

// record records how a build ended in the store.
func (q *Queue) record(ctx context.Context, id int64, o outcome) error {
	if o.status == store.BuildSucceeded {
		return q.cfg.Store.SucceedBuild(ctx, id, o.digest, o.packages)
	}
	return q.cfg.Store.FinishBuild(ctx, id, o.status, o.digest, o.reason)
}

func failed(format string, args ...any) outcome {
	return outcome{status: store.BuildFailed, reason: fmt.Sprintf(format, args...)}
}

// run runs one build to its end and records how it ended.
func (q *Queue) run(ctx context.Context, a *activeBuild, b *store.Build) {
	defer q.release(a)
	log := q.openLog(b.ID)
	fmt.Fprintf(log, "imagehub: build %d of image %s started\n", b.ID, b.Image)
	q.finish(ctx, a, b, q.execute(ctx, a, b, log), log)
}

// finish writes a build's last line, records its outcome and closes its
// log. A build whose worker goes on after the server stopped (detached)
// stays as it is, for the next run of the server to follow again.
func (q *Queue) finish(ctx context.Context, a *activeBuild, b *store.Build, o outcome, log io.WriteCloser) {
	if o.detached {
		if err := log.Close(); err != nil {
			q.cfg.Logger.Error("writing build log", "build", b.ID, "err", err)
		}
		return
	}
	fmt.Fprintln(log, o.logLine(b))
	if err := log.Close(); err != nil {
		q.cfg.Logger.Error("writing build log", "build", b.ID, "err", err)
	}
	if err := q.record(ctx, b.ID, o); err != nil {
		q.cfg.Logger.Error("recording the end of a build", "build", b.ID, "status", o.status, "err", err)
	} else {
		q.cfg.Observer.BuildFinished(o.status, time.Since(a.started))
	}
	if err := q.cfg.Logs.Close(b.ID, o.status); err != nil {
		q.cfg.Logger.Error("closing build log", "build", b.ID, "err", err)
	}
	q.afterBuild(ctx, b.ID)
}

// openLog opens a build's log; when that fails the build still runs, and
// the failure goes to the server's log.
func (q *Queue) openLog(id int64) io.WriteCloser {
	w, err := q.cfg.Logs.Writer(id)
	if err != nil {
		q.cfg.Logger.Error("opening build log", "build", id, "err", err)
		return nopWriteCloser{io.Discard}
	}
	return w
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// logLine is the last line of a build's log.
func (o outcome) logLine(b *store.Build) string {
	switch {
	case o.status == store.BuildSucceeded && o.upToDate:
		return fmt.Sprintf("imagehub: build %d succeeded: %s is up to date", b.ID, b.TargetImage)
	case o.status == store.BuildSucceeded:
		return fmt.Sprintf("imagehub: build %d succeeded: pushed %s (%s)", b.ID, b.TargetImage, o.digest)
	case o.status == store.BuildCancelled:
		return fmt.Sprintf("imagehub: build %d was cancelled", b.ID)
	case o.status == store.BuildInterrupted:
		return interruptedLine
	}
	return fmt.Sprintf("imagehub: build %d failed: %s", b.ID, o.reason)
}

// execute prepares the worker's spec, starts the worker and follows it.
func (q *Queue) execute(ctx context.Context, a *activeBuild, b *store.Build, log io.Writer) outcome {
	spec, err := q.workerSpec(ctx, b)
	if err != nil {
		return failed("%s", workerspec.Reason(err))
	}
	if err := makeTraversable(spec.TmpDir); err != nil {
		return failed("making the build's temporary folder: %s", workerspec.Reason(err))
	}
	defer q.removeTmpDir(b.ID)
	if a.stopped() {
		return a.outcome()
	}
	job, err := q.cfg.Runner.Start(ctx, spec, q.cfg.Logs.Dir(b.ID))
	if err != nil {
		return failed("starting the worker: %s", workerspec.Reason(err))
	}
	return q.follow(ctx, a, b, job, log, logged{})
}

// workerSpec turns a build into what its worker needs: the parsed recipe
// (with its smoke test on or off), the normalised base image, the
// credentials of its pull secret, the digest recorded for its target, the
// image's owner (whose package caches it uses) and the package mirrors in
// effect now.
func (q *Queue) workerSpec(ctx context.Context, b *store.Build) (workerspec.Spec, error) {
	pkgs, err := recipe.Parse(recipe.Text{BaseImage: b.Recipe.BaseImage, Apt: b.Recipe.Apt, Conda: b.Recipe.Conda, Pip: b.Recipe.Pip})
	if err != nil {
		return workerspec.Spec{}, err
	}
	base, err := remote.NormalizeReference(b.Recipe.BaseImage)
	if err != nil {
		return workerspec.Spec{}, fmt.Errorf("base image: %w", err)
	}
	spec := workerspec.Spec{
		BuildID: b.ID, Storage: q.cfg.Storage, TmpDir: q.tmpDir(b.ID), BaseImage: base, Packages: pkgs,
		Target: b.TargetImage, PushAuth: q.cfg.PushAuth, Insecure: q.cfg.Insecure,
		AllowCIDRs: q.cfg.AllowCIDRs, Limits: q.cfg.Limits, PackageCache: q.cfg.PackageCache,
		SkipSmokeTest: !b.Recipe.SmokeTest.On(),
	}
	img, err := q.cfg.Store.FindImage(ctx, b.Image)
	if err != nil {
		return workerspec.Spec{}, fmt.Errorf("image %s: %w", b.Image, err)
	}
	spec.Owner = img.Owner
	if spec.Mirrors, err = q.mirrors(ctx); err != nil {
		return workerspec.Spec{}, err
	}
	if spec.KnownDigest, spec.KnownBaseDigest, err = q.cfg.Store.LastDigest(ctx, b.Image, b.TargetImage); store.ErrorCode(err) == store.ENOTFOUND {
		spec.KnownDigest, spec.KnownBaseDigest = "", ""
	} else if err != nil {
		return workerspec.Spec{}, fmt.Errorf("the digest recorded for %s: %w", b.TargetImage, err)
	}
	// The worker offers its pull credential to the base image's registry
	// only (PullAuth).
	if spec.PullAuth, err = workerspec.PullAuth(ctx, q.cfg.Store, b.Recipe, base, b.TargetImage, q.cfg.RegistryPullAuth); err != nil {
		return workerspec.Spec{}, err
	}
	return spec, nil
}

// makeTraversable makes a build's temporary folder, and the folder that holds
// them, 0711: RUN steps run as subordinate ids, and runc, as those, must pass
// through them to the container's root file system; nobody but the owner may
// list them.
func makeTraversable(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	return errors.Join(os.Chmod(filepath.Dir(dir), 0o711), os.Chmod(dir, 0o711))
}

func (q *Queue) tmpDir(id int64) string {
	return filepath.Join(q.cfg.TmpRoot, "build-"+strconv.FormatInt(id, 10))
}

// mirrors are the package settings in effect (the Settings page's over the
// flags'), with the credentials of their secrets.
func (q *Queue) mirrors(ctx context.Context) (workerspec.Mirrors, error) {
	p, err := q.cfg.Store.EffectivePackageSettings(ctx)
	if err != nil {
		return workerspec.Mirrors{}, fmt.Errorf("package settings: %w", err)
	}
	m := workerspec.Mirrors{PipIndexURL: p.PipIndexURL, PipExtraIndexURL: p.PipExtraIndexURL,
		CondaChannels: p.Channels(), CondaChannelAlias: p.CondaChannelAlias, AptMirror: p.AptMirror}
	for _, x := range []struct {
		secret string
		auth   **workerspec.HostAuth
	}{{p.PipSecret, &m.PipAuth}, {p.CondaSecret, &m.CondaAuth}, {p.AptSecret, &m.AptAuth}} {
		if x.secret == "" {
			continue
		}
		host, user, pass, err := q.cfg.Store.SecretAuth(ctx, x.secret)
		if err != nil {
			return workerspec.Mirrors{}, fmt.Errorf("package mirror secret %q: %w", x.secret, err)
		}
		*x.auth = &workerspec.HostAuth{Host: host, Username: user, Password: pass}
	}
	return m, nil
}
