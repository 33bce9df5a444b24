package worker

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"imagehub/buildah/workerspec"
)

// TestStepWatcher: buildah's step lines become step events however the
// output is split into writes, the output passes unchanged, and of what a
// RUN step could print only the next step counts: a step out of order, of
// another count, past its count, not at a line's beginning, or with a stage
// prefix is no event.
func TestStepWatcher(t *testing.T) {
	output := strings.Join([]string{
		"Containerfile:",
		"FROM base",
		"STEP 1/3: FROM base",
		"  STEP 2/3: RUN indented, not buildah's",
		"STEP 3/3: RUN skips step 2",
		"[1/2] STEP 2/3: RUN another stage",
		"STEP 2/4: RUN another count",
		"STEP 2/3: RUN apt-get install -y " + strings.Repeat("x", 5000),
		"a RUN step prints STEP 3/3: inside a line",
		"STEP 2/3: RUN again",
		"STEP 3/3: USER 1000",
		"STEP 4/3: past the end",
		"STEP 4: no count",
		"COMMIT registry.test/x:y",
		"STEP 3/3: at the end, without a newline",
	}, "\n")
	for _, size := range []int{1, 7, 64, len(output)} {
		var out bytes.Buffer
		var got []string
		w := newStepWatcher(&out, func(e workerspec.Event) {
			if e.Phase != workerspec.PhaseStep {
				t.Errorf("event %+v", e)
			}
			got = append(got, fmt.Sprintf("%d/%d", e.Step, e.Steps))
		})
		for rest := output; rest != ""; {
			n := min(size, len(rest))
			if k, err := w.Write([]byte(rest[:n])); k != n || err != nil {
				t.Fatalf("writes of %d bytes: Write = %d, %v", size, k, err)
			}
			rest = rest[n:]
		}
		if out.String() != output {
			t.Errorf("writes of %d bytes: the output changed", size)
		}
		if want := []string{"1/3", "2/3", "3/3"}; !slices.Equal(got, want) {
			t.Errorf("writes of %d bytes: steps %v, want %v", size, got, want)
		}
	}
}
