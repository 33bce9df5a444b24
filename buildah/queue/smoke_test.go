package queue

import (
	"testing"

	"imagehub/store"
)

// TestQueueSmokeTestSwitch: the worker smoke-tests a build's image unless
// the build's recipe turns it off.
func TestQueueSmokeTestSwitch(t *testing.T) {
	e := newQueueEnv(t, nil)
	for i, on := range []bool{true, false} {
		r := okRecipe
		r.SmokeTest = store.NewToggle(on)
		b := e.queueBuild(t, []string{"on", "off"}[i], r)
		e.run(t)
		j := e.nextJob(t)
		if j.spec.BuildID != b.ID || j.spec.SkipSmokeTest == on {
			t.Errorf("recipe smokeTest %v: spec of build %d skips it: %v", on, j.spec.BuildID, j.spec.SkipSmokeTest)
		}
		j.exit(nil)
	}
}
