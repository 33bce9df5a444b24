package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"imagehub/buildah/buildlog"
	"imagehub/buildah/recipe"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// fakeRunner stands in for the local runner: its jobs do what the test tells
// them, and it counts how many run at once.
type fakeRunner struct {
	started chan *fakeJob
	// auto, when set, runs each job to its end by itself.
	auto func(j *fakeJob)

	mu         sync.Mutex
	running    int
	maxRunning int
	reaped     []int64
}

func newFakeRunner() *fakeRunner { return &fakeRunner{started: make(chan *fakeJob, 100)} }

func (r *fakeRunner) Start(_ context.Context, spec workerspec.Spec, dir string) (Job, error) {
	outR, outW := io.Pipe()
	j := &fakeJob{runner: r, spec: spec, dir: dir, outR: outR, outW: outW,
		events: make(chan workerspec.Event, 16), exited: make(chan struct{}), cancelled: make(chan struct{})}
	r.mu.Lock()
	r.running++
	r.maxRunning = max(r.maxRunning, r.running)
	r.mu.Unlock()
	if r.auto != nil {
		go r.auto(j)
	}
	r.started <- j
	return j, nil
}

func (r *fakeRunner) Reap(_ context.Context, id int64, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reaped = append(r.reaped, id)
	return nil
}

// fakeJob is one pretend worker.
type fakeJob struct {
	runner    *fakeRunner
	spec      workerspec.Spec
	dir       string
	outR      *io.PipeReader
	outW      *io.PipeWriter
	events    chan workerspec.Event
	exited    chan struct{}
	cancelled chan struct{}
	once      sync.Once
	cancel    sync.Once
	err       error
}

func (j *fakeJob) Output() io.Reader               { return j.outR }
func (j *fakeJob) Events() <-chan workerspec.Event { return j.events }

func (j *fakeJob) Cancel() {
	j.cancel.Do(func() { close(j.cancelled) })
	j.exit(errors.New("signal: killed"))
}

func (j *fakeJob) Wait() error {
	<-j.exited
	return j.err
}

func (j *fakeJob) say(s string)            { io.WriteString(j.outW, s) }
func (j *fakeJob) emit(e workerspec.Event) { j.events <- e }

// exit ends the pretend worker with err as its exit error.
func (j *fakeJob) exit(err error) {
	j.once.Do(func() {
		j.err = err
		j.outW.Close()
		close(j.events)
		j.runner.mu.Lock()
		j.runner.running--
		j.runner.mu.Unlock()
		close(j.exited)
	})
}

// succeed plays a whole successful build.
func (j *fakeJob) succeed() {
	j.say(fmt.Sprintf("building %d\n", j.spec.BuildID))
	j.emit(workerspec.Event{Phase: workerspec.PhaseBuilding})
	j.emit(workerspec.Event{Phase: workerspec.PhaseBase, BaseDigest: builtOnDigest})
	j.emit(workerspec.Event{Phase: workerspec.PhasePushing})
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Digest: feedDigest})
	j.exit(nil)
}

// queueEnv is a queue with real SQLite, a real log hub and a fake runner.
type queueEnv struct {
	q      *Queue
	st     *store.Store
	runner *fakeRunner
	logs   *buildlog.Hub
	cfg    Config
}

func newQueueEnv(t *testing.T, tweak func(*Config)) *queueEnv {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "imagehub.db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &queueEnv{st: st, runner: newFakeRunner(), logs: buildlog.NewHub(filepath.Join(t.TempDir(), "builds"))}
	e.cfg = Config{Store: st, Runner: e.runner, Logs: e.logs, TmpRoot: t.TempDir(),
		Storage: workerspec.Storage{GraphRoot: "/g", RunRoot: "/r"}, Poll: time.Hour}
	if tweak != nil {
		tweak(&e.cfg)
	}
	e.q = New(e.cfg)
	return e
}

// run runs the queue until the test ends.
func (e *queueEnv) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.q.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// queueBuild makes an image with a recipe and queues a build of it.
func (e *queueEnv) queueBuild(t *testing.T, name string, r store.Recipe) *store.Build {
	t.Helper()
	ctx := context.Background()
	img := &store.Image{DisplayName: name, Type: store.TypeCPU, Global: true, Recipe: &r}
	if err := e.st.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	b, err := e.st.CreateBuild(ctx, img.Name, r, "registry.test/"+img.Name+":abc")
	if err != nil {
		t.Fatal(err)
	}
	e.q.Notify()
	return b
}

var okRecipe = store.Recipe{BaseImage: "busybox", Apt: "curl\n# comment\n", Pip: "numpy>=1.2"}

// waitStatus waits until a build reaches want.
func (e *queueEnv) waitStatus(t *testing.T, id int64, want store.BuildStatus) *store.Build {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := e.st.FindBuild(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if b.Status == want {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("build %d is %s (%s), want %s", id, b.Status, b.Error, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logText returns a build's log.
func (e *queueEnv) logText(t *testing.T, id int64) string {
	t.Helper()
	r, err := e.logs.Text(id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

// finalStatus returns what a viewer of a finished build's log is told.
func (e *queueEnv) finalStatus(t *testing.T, id int64) store.BuildStatus {
	t.Helper()
	sub, err := e.logs.Subscribe(id, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	select {
	case <-sub.Lines():
	case <-time.After(5 * time.Second):
		t.Fatal("the log was not closed")
	}
	return sub.Status()
}

func (e *queueEnv) nextJob(t *testing.T) *fakeJob {
	t.Helper()
	select {
	case j := <-e.runner.started:
		return j
	case <-time.After(5 * time.Second):
		t.Fatal("no worker started")
		return nil
	}
}

func (e *queueEnv) noJob(t *testing.T) {
	t.Helper()
	select {
	case j := <-e.runner.started:
		t.Fatalf("build %d started", j.spec.BuildID)
	case <-time.After(50 * time.Millisecond):
	}
}

func lastLine(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestQueueRunsABuild(t *testing.T) {
	e := newQueueEnv(t, func(c *Config) {
		c.PushAuth = &remote.Auth{Username: "pusher", Password: "p"}
		c.Insecure = []string{"registry.test"}
	})
	ctx := context.Background()
	if err := e.st.CreateSecret(ctx, &store.Secret{Name: "hub", RegistryHost: "docker.io", Username: "puller", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	r := okRecipe
	r.PullSecret = "hub"
	b := e.queueBuild(t, "foo", r)
	e.run(t)
	j := e.nextJob(t)

	want := workerspec.Spec{
		BuildID: b.ID, Storage: e.cfg.Storage, TmpDir: filepath.Join(e.cfg.TmpRoot, fmt.Sprintf("build-%d", b.ID)),
		BaseImage: "docker.io/library/busybox:latest", Packages: recipe.Packages{Apt: []string{"curl"}, Pip: []string{"numpy>=1.2"}},
		Target: b.TargetImage, PullAuth: &remote.Auth{Username: "puller", Password: "pw"}, PushAuth: e.cfg.PushAuth,
		Insecure: []string{"registry.test"}, Owner: store.OwnerSystem,
	}
	gotJSON, _ := json.Marshal(j.spec)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("spec\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if fi, err := os.Stat(j.spec.TmpDir); err != nil || !fi.IsDir() {
		t.Errorf("no temporary folder: %v", err)
	}
	if j.dir != e.logs.Dir(b.ID) {
		t.Errorf("worker dir %s, want %s", j.dir, e.logs.Dir(b.ID))
	}
	e.waitStatus(t, b.ID, store.BuildRunning)
	j.say("step 1\npartial")
	j.emit(workerspec.Event{Phase: workerspec.PhaseBuilding})
	j.emit(workerspec.Event{Phase: workerspec.PhasePushing})
	e.waitStatus(t, b.ID, store.BuildPushing)
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Digest: feedDigest})
	j.exit(nil)

	got := e.waitStatus(t, b.ID, store.BuildSucceeded)
	if got.Digest != feedDigest || got.Error != "" || got.StartedAt == nil || got.FinishedAt == nil {
		t.Errorf("build = %+v", got)
	}
	img, _ := e.st.FindImage(ctx, b.Image)
	if want := b.TargetImage + "@" + feedDigest; img.URL != want || !img.Ready {
		t.Errorf("image url %q ready %v, want %q", img.URL, img.Ready, want)
	}
	text := e.logText(t, b.ID)
	wantText := fmt.Sprintf("imagehub: build %d of image %s started\nstep 1\npartial\n"+
		"imagehub: build %d succeeded: pushed %s (%s)\n", b.ID, b.Image, b.ID, b.TargetImage, feedDigest)
	if text != wantText {
		t.Errorf("log\n%s\nwant\n%s", text, wantText)
	}
	if st := e.finalStatus(t, b.ID); st != store.BuildSucceeded {
		t.Errorf("log's final status %q", st)
	}
	if _, err := os.Stat(j.spec.TmpDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary folder left behind (%v)", err)
	}
}

func TestQueueUpToDate(t *testing.T) {
	e := newQueueEnv(t, nil)
	b := e.queueBuild(t, "foo", okRecipe)
	e.run(t)
	j := e.nextJob(t)
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, UpToDate: true, Digest: oldDigest})
	j.exit(nil)
	got := e.waitStatus(t, b.ID, store.BuildSucceeded)
	if got.Digest != oldDigest || !strings.HasSuffix(e.logText(t, b.ID), "is up to date\n") {
		t.Errorf("digest %q, log:\n%s", got.Digest, e.logText(t, b.ID))
	}
}

// Digests that fake workers report.
var (
	feedDigest = "sha256:" + strings.Repeat("fe", 32)
	// builtOnDigest is the base digest of the builds that succeed.
	builtOnDigest = "sha256:" + strings.Repeat("ba", 32)
	oldDigest     = "sha256:" + strings.Repeat("01", 32)
)

// TestQueueKnownDigest: the spec of a build carries the digest that the
// last succeeded build of the image recorded for the same target, so that
// the worker can tell its own push from a tag somebody else wrote, and the
// base digest that build reported, so that it can tell a base that moved.
func TestQueueKnownDigest(t *testing.T) {
	e := newQueueEnv(t, nil)
	ctx := context.Background()
	first := e.queueBuild(t, "foo", okRecipe)
	e.run(t)
	j := e.nextJob(t)
	if j.spec.KnownDigest != "" {
		t.Errorf("first build: KnownDigest = %q, want none", j.spec.KnownDigest)
	}
	j.succeed()
	e.waitStatus(t, first.ID, store.BuildSucceeded)
	if b, err := e.st.FindBuild(ctx, first.ID); err != nil || b.BaseDigest != builtOnDigest {
		t.Errorf("first build: %+v, %v; want the base digest it reported, %s", b, err, builtOnDigest)
	}

	failed, err := e.st.CreateBuild(ctx, first.Image, okRecipe, first.TargetImage)
	if err != nil {
		t.Fatal(err)
	}
	e.q.Notify()
	j = e.nextJob(t)
	if j.spec.KnownDigest != feedDigest || j.spec.KnownBaseDigest != builtOnDigest {
		t.Errorf("second build: KnownDigest = %q, KnownBaseDigest = %q; want %s, %s",
			j.spec.KnownDigest, j.spec.KnownBaseDigest, feedDigest, builtOnDigest)
	}
	j.exit(errors.New("exit status 1"))
	e.waitStatus(t, failed.ID, store.BuildFailed)

	other, err := e.st.CreateBuild(ctx, first.Image, okRecipe, "registry.test/foo:other")
	if err != nil {
		t.Fatal(err)
	}
	e.q.Notify()
	if j = e.nextJob(t); j.spec.KnownDigest != "" {
		t.Errorf("another target: KnownDigest = %q, want none", j.spec.KnownDigest)
	}
	j.exit(errors.New("exit status 1"))
	e.waitStatus(t, other.ID, store.BuildFailed)

	again, err := e.st.CreateBuild(ctx, first.Image, okRecipe, first.TargetImage)
	if err != nil {
		t.Fatal(err)
	}
	e.q.Notify()
	if j = e.nextJob(t); j.spec.KnownDigest != feedDigest {
		t.Errorf("after a failed build: KnownDigest = %q, want that of the last success, %s", j.spec.KnownDigest, feedDigest)
	}
	j.succeed()
	e.waitStatus(t, again.ID, store.BuildSucceeded)
}

// TestQueueRegistryPullAuth: a base image on the registry builds are pushed
// to, with no pull secret of its own, is pulled with the registry's pull
// account; a base elsewhere gets no credential.
func TestQueueRegistryPullAuth(t *testing.T) {
	pull := &remote.Auth{Username: "imagehub-pull", Password: "pw"}
	e := newQueueEnv(t, func(c *Config) { c.RegistryPullAuth = pull })
	e.runner.auto = func(j *fakeJob) { j.succeed() }
	e.run(t)
	for _, tt := range []struct {
		base string
		want *remote.Auth
	}{
		{"registry.test/base/busybox:stubs", pull},
		{"registry.test/base/busybox:stubs@" + oldDigest, pull},
		{"busybox", nil},
		{"other.test/base/busybox:1", nil},
	} {
		r := okRecipe
		r.BaseImage = tt.base
		b := e.queueBuild(t, fmt.Sprintf("img%d", len(tt.base)), r)
		j := e.nextJob(t)
		if got := j.spec.PullAuth; (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("base %s: PullAuth = %+v, want %+v", tt.base, got, tt.want)
		}
		e.waitStatus(t, b.ID, store.BuildSucceeded)
	}
}

// TestQueueSuccessNeedsADigest: a worker that says it succeeded without a
// well-formed digest failed, since the image's URL must pin one.
func TestQueueSuccessNeedsADigest(t *testing.T) {
	e := newQueueEnv(t, nil)
	b := e.queueBuild(t, "foo", okRecipe)
	e.run(t)
	j := e.nextJob(t)
	j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Digest: "sha256:feed"})
	j.exit(nil)
	got := e.waitStatus(t, b.ID, store.BuildFailed)
	if !strings.Contains(got.Error, "without the digest") {
		t.Errorf("reason %q", got.Error)
	}
	if img, _ := e.st.FindImage(context.Background(), b.Image); img.Ready {
		t.Errorf("the image became ready at %q", img.URL)
	}
}

func TestQueueRespectsConcurrency(t *testing.T) {
	e := newQueueEnv(t, func(c *Config) { c.Concurrency = 2 })
	e.runner.auto = func(j *fakeJob) {
		time.Sleep(20 * time.Millisecond)
		j.succeed()
	}
	var ids []int64
	for i := range 7 {
		ids = append(ids, e.queueBuild(t, fmt.Sprintf("img%d", i), okRecipe).ID)
	}
	e.run(t)
	var prev time.Time
	for _, id := range ids {
		b := e.waitStatus(t, id, store.BuildSucceeded)
		// Oldest first: each build started no earlier than the one queued
		// before it.
		if b.StartedAt.Before(prev) {
			t.Errorf("build %d started at %s, before the build queued before it (%s)", id, b.StartedAt, prev)
		}
		prev = *b.StartedAt
	}
	e.runner.mu.Lock()
	defer e.runner.mu.Unlock()
	if e.runner.maxRunning != 2 {
		t.Errorf("at most %d ran at once, want 2", e.runner.maxRunning)
	}
}

func TestQueueCancelQueued(t *testing.T) {
	e := newQueueEnv(t, func(c *Config) { c.Concurrency = 1 })
	first := e.queueBuild(t, "first", okRecipe)
	second := e.queueBuild(t, "second", okRecipe)
	e.run(t)
	j := e.nextJob(t)
	e.waitStatus(t, first.ID, store.BuildRunning)
	if err := e.q.Cancel(context.Background(), second.ID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, second.ID, store.BuildCancelled)
	if st := e.finalStatus(t, second.ID); st != store.BuildCancelled {
		t.Errorf("log's final status %q", st)
	}
	j.succeed()
	e.waitStatus(t, first.ID, store.BuildSucceeded)
	e.noJob(t)
	if err := e.q.Cancel(context.Background(), second.ID); store.ErrorCode(err) != store.ECONFLICT {
		t.Errorf("cancelling a cancelled build: %v, want a conflict", err)
	}
}

func TestQueueCancelRunning(t *testing.T) {
	e := newQueueEnv(t, nil)
	b := e.queueBuild(t, "foo", okRecipe)
	e.run(t)
	j := e.nextJob(t)
	j.say("working\n")
	e.waitStatus(t, b.ID, store.BuildRunning)
	start := time.Now()
	if err := e.q.Cancel(context.Background(), b.ID); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("cancel took %s", took)
	}
	// Cancel returns with the state recorded.
	got, _ := e.st.FindBuild(context.Background(), b.ID)
	if got.Status != store.BuildCancelled {
		t.Errorf("status %s right after Cancel", got.Status)
	}
	select {
	case <-j.cancelled:
	default:
		t.Error("the worker was not cancelled")
	}
	text := e.logText(t, b.ID)
	if !strings.Contains(text, "working\n") || lastLine(text) != fmt.Sprintf("imagehub: build %d was cancelled", b.ID) {
		t.Errorf("log:\n%s", text)
	}
	if err := e.q.Cancel(context.Background(), b.ID); store.ErrorCode(err) != store.ECONFLICT {
		t.Errorf("second cancel: %v, want a conflict", err)
	}
	if err := e.q.Cancel(context.Background(), 999); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("cancel of a missing build: %v, want not found", err)
	}
}

func TestQueueDeadline(t *testing.T) {
	e := newQueueEnv(t, func(c *Config) { c.Deadline = 100 * time.Millisecond })
	b := e.queueBuild(t, "foo", okRecipe)
	e.run(t)
	j := e.nextJob(t)
	got := e.waitStatus(t, b.ID, store.BuildFailed)
	if got.Error != "deadline of 100ms passed" {
		t.Errorf("reason %q", got.Error)
	}
	select {
	case <-j.cancelled:
	default:
		t.Error("the worker was not cancelled")
	}
}

func TestQueueFailures(t *testing.T) {
	tests := []struct {
		name   string
		recipe store.Recipe
		play   func(j *fakeJob)
		reason string
	}{
		{"worker reports", okRecipe, func(j *fakeJob) {
			j.emit(workerspec.Event{Phase: workerspec.PhaseDone, Error: "the base image has no pip"})
			j.exit(errors.New("exit status 1"))
		}, "the base image has no pip"},
		{"worker dies", okRecipe, func(j *fakeJob) {
			j.say("half a line")
			j.exit(errors.New("signal: segmentation fault"))
		}, "worker exited: signal: segmentation fault"},
		{"worker says nothing", okRecipe, func(j *fakeJob) { j.exit(nil) },
			"worker exited without reporting a result"},
		{"bad recipe", store.Recipe{BaseImage: "busybox", Pip: "numpy\nrm -rf /"}, nil,
			`recipe refused (1 bad line): pip line 2 "rm -rf /"`},
		{"bad base", store.Recipe{BaseImage: "Busy Box"}, nil, "base image: an image reference cannot contain spaces"},
		{"missing secret", store.Recipe{BaseImage: "busybox", PullSecret: "nope"}, nil, `pull secret "nope": Secret "nope" not found.`},
		{"secret of another registry", store.Recipe{BaseImage: "busybox", PullSecret: "quay"}, nil,
			`pull secret "quay" is for quay.io, but the base image is on docker.io`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newQueueEnv(t, nil)
			err := e.st.CreateSecret(context.Background(), &store.Secret{Name: "quay", RegistryHost: "quay.io", Username: "u", Password: "p"})
			if err != nil {
				t.Fatal(err)
			}
			b := e.queueBuild(t, "foo", tt.recipe)
			e.run(t)
			if tt.play != nil {
				tt.play(e.nextJob(t))
			}
			got := e.waitStatus(t, b.ID, store.BuildFailed)
			if !strings.HasPrefix(got.Error, tt.reason) {
				t.Errorf("reason %q, want %q…", got.Error, tt.reason)
			}
			if want := fmt.Sprintf("imagehub: build %d failed: %s", b.ID, got.Error); lastLine(e.logText(t, b.ID)) != want {
				t.Errorf("log:\n%s", e.logText(t, b.ID))
			}
			if tt.play == nil {
				e.noJob(t)
			}
		})
	}
}

func TestQueueRecover(t *testing.T) {
	e := newQueueEnv(t, nil)
	ctx := context.Background()
	left := e.queueBuild(t, "left", okRecipe)
	waiting := e.queueBuild(t, "waiting", okRecipe)
	// The server that died had started the first build and logged a line.
	if err := e.st.StartBuild(ctx, left.ID); err != nil {
		t.Fatal(err)
	}
	w, _ := e.logs.Writer(left.ID)
	fmt.Fprint(w, "imagehub: build started\nStep 1/3")
	w.Close()
	os.MkdirAll(e.q.tmpDir(left.ID), 0o700)

	restarted := buildlog.NewHub(filepath.Dir(e.logs.Dir(0))) // the new server's hub
	e.cfg.Logs = restarted
	e.q = New(e.cfg)
	e.logs = restarted
	if err := e.q.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	got := e.waitStatus(t, left.ID, store.BuildInterrupted)
	if got.Error != interruptedReason {
		t.Errorf("reason %q", got.Error)
	}
	if want := "imagehub: build started\nStep 1/3\n" + interruptedLine + "\n"; e.logText(t, left.ID) != want {
		t.Errorf("log %q, want %q", e.logText(t, left.ID), want)
	}
	if st := e.finalStatus(t, left.ID); st != store.BuildInterrupted {
		t.Errorf("log's final status %q", st)
	}
	if fmt.Sprint(e.runner.reaped) != fmt.Sprint([]int64{left.ID}) {
		t.Errorf("reaped %v", e.runner.reaped)
	}
	if _, err := os.Stat(e.q.tmpDir(left.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary folder left behind")
	}
	e.runner.auto = (*fakeJob).succeed
	e.run(t)
	e.waitStatus(t, waiting.ID, store.BuildSucceeded)
}

func TestQueueShutdownInterruptsRunningBuilds(t *testing.T) {
	e := newQueueEnv(t, nil)
	b := e.queueBuild(t, "foo", okRecipe)
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() {
		e.q.Run(ctx)
		close(returned)
	}()
	j := e.nextJob(t)
	e.waitStatus(t, b.ID, store.BuildRunning)
	cancel()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case <-j.cancelled:
	default:
		t.Error("the worker was not stopped")
	}
	got := e.waitStatus(t, b.ID, store.BuildInterrupted)
	if got.Error != interruptedReason || lastLine(e.logText(t, b.ID)) != interruptedLine {
		t.Errorf("reason %q, log:\n%s", got.Error, e.logText(t, b.ID))
	}
}

func TestQueueCancelLeftoverBuild(t *testing.T) {
	e := newQueueEnv(t, nil)
	ctx := context.Background()
	b := e.queueBuild(t, "foo", okRecipe)
	if err := e.st.StartBuild(ctx, b.ID); err != nil { // by a server that died
		t.Fatal(err)
	}
	if err := e.q.Cancel(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, b.ID, store.BuildCancelled)
	if fmt.Sprint(e.runner.reaped) != fmt.Sprint([]int64{b.ID}) {
		t.Errorf("reaped %v", e.runner.reaped)
	}
	if st := e.finalStatus(t, b.ID); st != store.BuildCancelled {
		t.Errorf("log's final status %q", st)
	}
}

// flood plays a worker that writes text over and over until it is stopped.
func (j *fakeJob) flood(text string) {
	for {
		if _, err := io.WriteString(j.outW, text); err != nil {
			return
		}
	}
}

// TestQueueLogSizeCap plays a worker that floods its output, in lines and in
// one endless line: once the log passes MaxLogSize the worker is stopped,
// the build fails saying why, and the log file stays within the cap (plus
// the queue's own lines).
func TestQueueLogSizeCap(t *testing.T) {
	const limit = 64 << 10
	for name, text := range map[string]string{
		"lines":        "spam spam spam spam spam\n",
		"endless line": strings.Repeat("x", 4096),
	} {
		t.Run(name, func(t *testing.T) {
			e := newQueueEnv(t, func(c *Config) { c.MaxLogSize = limit })
			b := e.queueBuild(t, "flood", okRecipe)
			e.run(t)
			j := e.nextJob(t)
			go j.flood(text)
			got := e.waitStatus(t, b.ID, store.BuildFailed)
			const reason = "the build log passed 64 KiB, the limit set by --max-log-size"
			if got.Error != reason {
				t.Errorf("reason %q, want %q", got.Error, reason)
			}
			select {
			case <-j.cancelled:
			default:
				t.Error("the worker was not stopped")
			}
			log := e.logText(t, b.ID)
			if want := fmt.Sprintf("imagehub: build %d failed: %s", b.ID, reason); lastLine(log) != want {
				t.Errorf("last line %q, want %q", lastLine(log), want)
			}
			fi, err := os.Stat(filepath.Join(e.logs.Dir(b.ID), "build.log"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > limit+1024 {
				t.Errorf("the log file has %d bytes; the cap is %d", fi.Size(), limit)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		50 << 20: "50 MiB", 64 << 10: "64 KiB", 1536 << 10: "1536 KiB", 1000: "1000 bytes", 1 << 30: "1024 MiB",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
