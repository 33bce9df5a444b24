package worker

import (
	"context"
	"strings"
	"testing"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/recipe"
)

// TestWorkerRefusesBaseOnLoopback: a base image on a loopback listener that
// is no configured registry (the server's web app, say) is refused before
// the worker sends it anything.
func TestWorkerRefusesBaseOnLoopback(t *testing.T) {
	buildtest.NeedRoot(t)
	reg, st := buildtest.Registry(t, ""), newTestStorage(t)
	addr, conns := buildtest.Listener(t)
	base := addr + "/team/base:1"
	pkgs := recipe.Packages{Apt: []string{"curl"}}
	spec := testSpec(t, 31, st, reg, base, "team/loop:"+recipe.Tag(base, pkgs), pkgs)
	_, log, _, err := runTestWorker(t, context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "configured registries") {
		t.Errorf("Run from a base on %s = %v, want refused as loopback\n%s", addr, err, log)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the loopback listener saw %d connections", n)
	}
}
