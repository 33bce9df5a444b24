package handlers

import (
	"os/exec"
	"strings"
	"testing"
)

// TestWebLayerLinksNoBuildah keeps the web layer away from the buildah
// library: builds are reached through the queue and the worker process only
// (docs/architecture.md). It asks the go command for what handlers links.
func TestWebLayerLinksNoBuildah(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "go.podman.io/buildah" || strings.HasPrefix(pkg, "go.podman.io/buildah/") ||
			pkg == "imagehub/buildah/worker" || pkg == "imagehub/buildah/queue" {
			t.Errorf("handlers links %s", pkg)
		}
	}
}
