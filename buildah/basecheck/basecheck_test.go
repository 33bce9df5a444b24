package basecheck_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"imagehub/buildah/basecheck"
	"imagehub/buildah/buildtest"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/store"
)

// env is a store with one custom image built on a base in a real registry
// guarded as the embedded one is: the base and the built image share it,
// so the check pulls the base with the registry's pull-only account, as the
// build does.
type env struct {
	st         *store.Store
	reg        *registry.Server
	addr       string
	push, pull *remote.Auth
	base       string // the base's reference, on its tag
	builtOn    string // the digest the image's build recorded
}

func newEnv(t *testing.T) *env {
	t.Helper()
	reg, push, pull := buildtest.RegistryWithAccounts(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "imagehub.db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{st: st, reg: reg, addr: reg.Addr(), push: push, pull: pull, base: reg.Addr() + "/library/debian:bookworm"}
	e.builtOn = buildtest.PushImage(t, e.addr, push, "library/debian", "bookworm", "first").Manifest
	ctx := context.Background()
	r := store.Recipe{BaseImage: e.base, Apt: "jq"}
	if err := st.CreateImage(ctx, &store.Image{DisplayName: "app", Type: store.TypeCPU, Global: true, Recipe: &r}); err != nil {
		t.Fatal(err)
	}
	b, err := st.CreateBuild(ctx, "app", r, e.addr+"/imagehub/app:abc")
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{st.StartBuild(ctx, b.ID), st.SetBuildBase(ctx, b.ID, e.builtOn),
		st.SucceedBuild(ctx, b.ID, "sha256:"+strings.Repeat("a", 64), nil)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// checker checks with the outbound policy of a server whose registry is
// the test's, plus the given ones.
func (e *env) checker(interval time.Duration, log *bytes.Buffer, registries ...string) *basecheck.Checker {
	registries = append([]string{e.addr}, registries...)
	return basecheck.New(basecheck.Config{Store: e.st, Policy: remote.NewPolicy(registries...), Insecure: registries,
		RegistryPullAuth: e.pull, Interval: interval, Logger: slog.New(slog.NewTextHandler(log, nil))})
}

// moveBase pushes another image to the base's tag and returns its digest.
func (e *env) moveBase(t *testing.T, note string) string {
	t.Helper()
	return buildtest.PushImage(t, e.addr, e.push, "library/debian", "bookworm", note).Manifest
}

func (e *env) image(t *testing.T) *store.Image {
	t.Helper()
	img, err := e.st.FindImage(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestCheckMarksAMovedBase: an unmoved base is no update; a new digest
// pushed to the base's tag is; an unreachable registry is an error that
// leaves the mark as it was.
func TestCheckMarksAMovedBase(t *testing.T) {
	e := newEnv(t)
	var log bytes.Buffer
	c := e.checker(0, &log)
	ctx := context.Background()

	img, err := c.Check(ctx, "app")
	if err != nil || img.BaseUpdateAvailable || img.BaseDigest != e.builtOn || img.BaseLatestDigest != e.builtOn {
		t.Fatalf("unmoved base: %+v, %v", img, err)
	}
	moved := e.moveBase(t, "second")
	img, err = c.Check(ctx, "app")
	if err != nil || !img.BaseUpdateAvailable || img.BaseDigest != e.builtOn || img.BaseLatestDigest != moved {
		t.Fatalf("moved base: %+v, %v; want the mark, built on %s, now %s", img.Base, err, e.builtOn, moved)
	}

	// The registry refuses a check without the credential builds use.
	noAuth := basecheck.New(basecheck.Config{Store: e.st, Policy: remote.NewPolicy(e.addr), Insecure: []string{e.addr}})
	_, err = noAuth.Check(ctx, "app")
	var regErr *basecheck.RegistryError
	if !errors.As(err, &regErr) || regErr.Reference != e.base {
		t.Fatalf("a check without the pull account: %v, want a RegistryError", err)
	}
	// The registry does not answer at all.
	e.reg.Close()
	if _, err = c.Check(ctx, "app"); !errors.As(err, &regErr) {
		t.Fatalf("unreachable registry: %v, want a RegistryError", err)
	}
	if got := e.image(t); !got.BaseUpdateAvailable || got.BaseLatestDigest != moved {
		t.Errorf("after a failed check: %+v, want the mark as it was", got.Base)
	}
}

// TestCheckRefusesWhatHasNoBase: an image that is not custom, not built, or
// whose build recorded no base has nothing to compare (ECONFLICT).
func TestCheckRefusesWhatHasNoBase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := store.Recipe{BaseImage: e.base}
	for _, img := range []*store.Image{
		{DisplayName: "plain", Type: store.TypeCPU, Global: true, URL: e.base},
		{DisplayName: "unbuilt", Type: store.TypeCPU, Global: true, Recipe: &r},
		{DisplayName: "legacy", Type: store.TypeCPU, Global: true, Recipe: &r},
	} {
		if err := e.st.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	b, err := e.st.CreateBuild(ctx, "legacy", r, e.addr+"/imagehub/legacy:abc")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.FinishBuild(ctx, b.ID, store.BuildSucceeded, "sha256:"+strings.Repeat("b", 64), ""); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	c := e.checker(0, &log)
	for _, name := range []string{"plain", "unbuilt", "legacy"} {
		if _, err := c.Check(ctx, name); store.ErrorCode(err) != store.ECONFLICT {
			t.Errorf("%s: %v, want ECONFLICT", name, err)
		}
	}
	if _, err := c.Check(ctx, "nope"); store.ErrorCode(err) != store.ENOTFOUND {
		t.Errorf("no such image: %v, want ENOTFOUND", err)
	}
}

// TestRunChecksPeriodically: with a short interval, the periodic check marks
// the image once its base moves; once the registry is gone, the failing
// checks are logged and the mark stays.
func TestRunChecksPeriodically(t *testing.T) {
	e := newEnv(t)
	var log syncBuffer
	c := basecheck.New(basecheck.Config{Store: e.st, Policy: remote.NewPolicy(e.addr), Insecure: []string{e.addr},
		RegistryPullAuth: e.pull, Interval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); c.Run(ctx) }()
	defer func() { cancel(); <-stopped }()

	waitFor(t, "the first periodic check", func() bool {
		return e.image(t).BaseCheckedAt != nil && strings.Contains(log.String(), "checked the base images")
	})
	if e.image(t).BaseUpdateAvailable {
		t.Fatal("marked before the base moved")
	}
	moved := e.moveBase(t, "second")
	waitFor(t, "the mark", func() bool { return e.image(t).BaseUpdateAvailable })
	if got := e.image(t).BaseLatestDigest; got != moved {
		t.Errorf("latest base digest %s, want %s", got, moved)
	}
	e.reg.Close()
	waitFor(t, "a failed check in the log", func() bool { return strings.Contains(log.String(), "base check failed") })
	if got := e.image(t); !got.BaseUpdateAvailable || got.BaseLatestDigest != moved {
		t.Errorf("after failed checks: %+v, want the mark as it was", got.Base)
	}
}

// TestRunWithoutIntervalReturns: an interval of 0 switches the periodic
// check off.
func TestRunWithoutIntervalReturns(t *testing.T) {
	e := newEnv(t)
	var log bytes.Buffer
	done := make(chan struct{})
	go func() { defer close(done); e.checker(0, &log).Run(context.Background()) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run with no interval did not return")
	}
	if got := e.image(t); got.BaseUpdateAvailable || log.Len() != 0 {
		t.Errorf("Run with no interval checked: %+v, log %q", got.Base, log.String())
	}
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// syncBuffer is a log that the test reads while the checker writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
