package worker

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/recipe"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
)

// TestWorkerSmokeTest builds real images on Debian minbase, without PyPI:
// apt through the test's mirror, pip from a PEP 503 index the test serves
// with wheels made here. It checks that
//   - apt python3-pip python3-yaml with pip pyyaml passes: pip finds PyYAML
//     installed, `pip check` runs and `import yaml` runs;
//   - a pip requirement whose import fails fails the build, naming the
//     requirement and the error in the reason and at the end of the log,
//     and nothing is pushed;
//   - "smokeTest": false skips the test, with a line in the log, and the
//     same image is pushed;
//   - an import that never ends is killed at the deadline and fails the
//     build, naming the requirement.
func TestWorkerSmokeTest(t *testing.T) {
	buildtest.NeedRoot(t)
	if testing.Short() {
		t.Skip("debootstrap and real apt-get installs take minutes")
	}
	mirror := newMirrorServer("builder", "smoke-test-pass")
	mirror.addWheelSource(t, "imagehub-broken", "1.0", "print('imagehub-broken says hello')\nraise ImportError('broken on purpose')\n")
	mirror.addWheelSource(t, "imagehub-hangs", "1.0", "import time\ntime.sleep(3600)\n")
	addr := buildtest.ReachableServer(t, mirror)
	auth := &workerspec.HostAuth{Host: addr, Username: "builder", Password: "smoke-test-pass"}
	mirrors := workerspec.Mirrors{
		AptMirror: "http://" + addr, AptAuth: auth,
		PipIndexURL: "http://" + addr + "/simple/", PipAuth: auth,
	}
	reg := buildtest.Registry(t, "")
	st := newTestStorage(t)
	base, _ := pushTestBase(t, reg, st, testBase{kind: BaseDebian, name: "debian/minbase"})
	apt := []string{"python3-pip", "python3-yaml"}
	build := func(t *testing.T, id int64, pip []string, skip bool) (*recorder, string, workerspec.Spec, error) {
		t.Helper()
		pkgs := recipe.Packages{Apt: apt, Pip: pip}
		spec := testSpec(t, id, st, reg, base, "team/smoke:"+recipe.Tag(base, pkgs), pkgs)
		spec.Mirrors, spec.SkipSmokeTest = mirrors, skip
		rec, log, took, err := runTestWorker(t, context.Background(), spec)
		t.Logf("build %d (pip %v) took %.1fs", id, pip, took.Seconds())
		return rec, log, spec, err
	}

	t.Run("pyyaml passes", func(t *testing.T) {
		_, log, _, err := build(t, 301, []string{"pyyaml"}, false)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		for _, want := range []string{"Requirement already satisfied: pyyaml",
			"imagehub: smoke test with /usr/bin/python3:", "imagehub smoke: pip check\n",
			"No broken requirements found.", "imagehub smoke: import pyyaml: ", "imagehub smoke: passed\n",
			"imagehub: smoke test passed\n"} {
			if !strings.Contains(log, want) {
				t.Errorf("the log lacks %q:\n%s", want, log)
			}
		}
		if i, j := strings.Index(log, "imagehub: smoke test passed"), strings.Index(log, "Pushing "); i < 0 || j < i {
			t.Errorf("the smoke test did not come before the push:\n%s", log)
		}
		line := log[strings.Index(log, "imagehub smoke: import pyyaml: "):]
		line = line[:strings.IndexByte(line, '\n')]
		if !slices.Contains(strings.Split(strings.TrimPrefix(line, "imagehub smoke: import pyyaml: "), ", "), "yaml") {
			t.Errorf("pyyaml's modules do not include yaml: %q", line)
		}
	})

	t.Run("a broken import fails the build and names it", func(t *testing.T) {
		rec, log, spec, err := build(t, 302, []string{"pyyaml", "imagehub-broken"}, false)
		want := "smoke test failed: imagehub-broken: import imagehub_broken: ImportError: broken on purpose"
		if err == nil || err.Error() != want {
			t.Fatalf("Run = %v, want %q\n%s", err, want, log)
		}
		for _, want := range []string{"imagehub-broken says hello", "Traceback (most recent call last):",
			"imagehub smoke: FAILED " + strings.TrimPrefix(want, "smoke test failed: ") + "\n", "imagehub smoke: failed\n"} {
			if !strings.Contains(log, want) {
				t.Errorf("the log lacks %q:\n%s", want, log)
			}
		}
		if slices.Contains(rec.phases(), workerspec.PhasePushing) || strings.Contains(log, "Pushing ") {
			t.Errorf("a build that failed its smoke test pushed:\n%s", log)
		}
		if _, exists, err := remote.TagExists(context.Background(), spec.Target, nil, true); err != nil || exists {
			t.Errorf("the tag of the failed build exists (%v, %v)", exists, err)
		}
	})

	t.Run("smokeTest false skips it", func(t *testing.T) {
		_, log, _, err := build(t, 303, []string{"pyyaml", "imagehub-broken"}, true)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, log)
		}
		if !strings.Contains(log, `imagehub: smoke test: skipped, the recipe turns it off ("smokeTest": false)`) || strings.Contains(log, "imagehub smoke:") {
			t.Errorf("the log does not say the smoke test was skipped, or ran it:\n%s", log)
		}
	})

	t.Run("an import that hangs meets the deadline", func(t *testing.T) {
		defer func(d time.Duration) { smokeDeadline = d }(smokeDeadline)
		smokeDeadline = 20 * time.Second
		start := time.Now()
		_, log, _, err := build(t, 304, []string{"imagehub-hangs"}, false)
		want := "smoke test: not done within 20s (while importing imagehub-hangs)"
		if err == nil || err.Error() != want {
			t.Fatalf("Run = %v, want %q\n%s", err, want, log)
		}
		if took := time.Since(start); took > 5*time.Minute {
			t.Errorf("the build took %v", took)
		}
	})
}
