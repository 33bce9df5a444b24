package worker

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestSmokeOutputVerdict reads smoke.py's lines as the container writes
// them (in pieces, between the packages' own output on standard error)
// and turns them into the build's outcome.
func TestSmokeOutputVerdict(t *testing.T) {
	run := func(stdout []string, stderr string, runErr error, timedOut bool) (string, error) {
		var log bytes.Buffer
		o := &smokeOutput{log: &log, left: smokeOutputLimit}
		for _, chunk := range stdout {
			o.stdout().Write([]byte(chunk))
			o.stderr().Write([]byte(stderr))
		}
		o.flush()
		err := o.verdict(runErr, timedOut)
		return log.String(), err
	}
	log, err := run([]string{"imagehub smoke: pip check\nimagehub smoke: imp", "ort pyyaml: yaml\n", "imagehub smoke: passed"}, "noise\n", nil, false)
	if err != nil || !strings.Contains(log, "imagehub smoke: import pyyaml: yaml\n") || !strings.HasSuffix(log, "imagehub: smoke test passed\n") {
		t.Errorf("passed: %v\n%s", err, log)
	}
	_, err = run([]string{"imagehub smoke: import a: a\n", "imagehub smoke: FAILED a: import a: ImportError: no\n",
		"imagehub smoke: import b: b\n", "imagehub smoke: FAILED b: import b: boom\n", "imagehub smoke: failed\n"}, "", errors.New("exit status 1"), false)
	if err == nil || err.Error() != "smoke test failed: a: import a: ImportError: no (and 1 more failures, see the log)" {
		t.Errorf("failed: %v", err)
	}
	_, err = run([]string{"imagehub smoke: import slow: slow\n"}, "", errors.New("signal: killed"), true)
	if err == nil || !strings.HasPrefix(err.Error(), "smoke test: not done within ") || !strings.HasSuffix(err.Error(), " (while importing slow)") {
		t.Errorf("timed out: %v", err)
	}
	if _, err = run([]string{"imagehub smoke: passed\n"}, "", errors.New("exit status 139"), false); err == nil || err.Error() != "smoke test: exit status 139" {
		t.Errorf("a failed run that says it passed: %v", err)
	}
	if _, err = run([]string{"imagehub smoke: pip check\n"}, "", nil, false); err == nil {
		t.Error("a run that never said it passed passed")
	}
	// Output beyond the bound is cut, and smoke.py's lines still count.
	log, err = run([]string{strings.Repeat("x", smokeOutputLimit) + "\n", "imagehub smoke: FAILED z: import z: late\n"}, strings.Repeat("y", 1000), errors.New("exit status 1"), false)
	if len(log) > smokeOutputLimit+200 || !strings.Contains(log, "output cut after") || err == nil || !strings.Contains(err.Error(), "z: import z: late") {
		t.Errorf("bounded output: %d bytes, %v", len(log), err)
	}
}

// TestSmokeScriptWithNothingToImport runs smoke.py under this machine's
// python3 with the argument of an image that has python3 and no pip
// requirement to import: it runs pip check and passes (it once failed on a
// null list, and with it every build of such an image).
func TestSmokeScriptWithNothingToImport(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to run smoke.py (.ci/install.sh installs it)")
	}
	for _, checks := range [][]smokeCheck{nil, {}} {
		arg, err := smokeArg(checks)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(python, "-c", smokeScript, string(arg)).CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), smokePrefix+"passed\n") {
			t.Errorf("smoke.py %s: %v\n%s", arg, err, out)
		}
	}
}
