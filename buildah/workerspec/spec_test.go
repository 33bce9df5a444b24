package workerspec

import (
	"encoding/json"
	"strings"
	"testing"

	"imagehub/store"
)

// TestPackagesEventFitsALine: a batch of PackagesPerEvent of the longest
// valid packages, every byte of them escaped in JSON, is one event line the
// server reads whole.
func TestPackagesEventFitsALine(t *testing.T) {
	worst := strings.Repeat("<", store.MaxPackageFieldLen) // "\u003c" in JSON
	p := store.Package{Manager: store.ManagerConda, Name: worst, Version: worst}
	if err := p.Validate(); err != nil {
		t.Fatalf("the worst package is not valid: %v", err)
	}
	batch := make([]store.Package, PackagesPerEvent)
	for i := range batch {
		batch[i] = p
	}
	line, err := json.Marshal(Event{Phase: PhasePackages, Packages: batch})
	if err != nil {
		t.Fatal(err)
	}
	if len(line)+1 > MaxEventLine {
		t.Errorf("a batch of %d packages takes %d bytes, more than the %d of a line", PackagesPerEvent, len(line)+1, MaxEventLine)
	}
}
