package worker

import (
	"strings"
	"testing"
)

// TestStepLog checks that the step log reads as buildah's own and that each
// RUN step, and only a RUN step, waits for beforeRun after its line.
func TestStepLog(t *testing.T) {
	containerfile := "FROM base@sha256:1\nUSER 0\nRUN apt-get install 'x'\nrun pip install 'y'\nUSER root\n"
	var out strings.Builder
	l := newStepLog(&out, containerfile, func() { out.WriteString("<wait>\n") })
	l.log("FROM %s", "base@sha256:1")
	l.log("%s", "USER 0")
	l.log("%s", "RUN apt-get install 'x'")
	l.log("%s", "run pip install 'y'")
	l.log("%s", "USER root")
	l.log("COMMIT example.com/a:1")
	l.log("%s", "USER extra")
	want := "STEP 1/5: FROM base@sha256:1\nSTEP 2/5: USER 0\n" +
		"STEP 3/5: RUN apt-get install 'x'\n<wait>\nSTEP 4/5: run pip install 'y'\n<wait>\n" +
		"STEP 5/5: USER root\nCOMMIT example.com/a:1\nSTEP 6: USER extra\n"
	if out.String() != want {
		t.Errorf("the step log reads\n%s\nwant\n%s", out.String(), want)
	}
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		if strings.HasPrefix(line, "STEP") && strings.Contains(line, "/") && !isBuildahNoise(line) {
			t.Errorf("%q is not recognised as buildah's own line", line)
		}
	}
}
