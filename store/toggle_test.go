package store

import (
	"encoding/json"
	"testing"
)

// TestRecipeSmokeTestToggle: a recipe's smoke test is on unless it says
// false, in JSON and in Go (a recipe stored before the field existed, a
// zero Recipe), and the stored form round-trips.
func TestRecipeSmokeTestToggle(t *testing.T) {
	for raw, on := range map[string]bool{
		`{"baseImage":"debian"}`:                   true,
		`{"baseImage":"debian","smokeTest":null}`:  true,
		`{"baseImage":"debian","smokeTest":true}`:  true,
		`{"baseImage":"debian","smokeTest":false}`: false,
	} {
		var r Recipe
		if err := json.Unmarshal([]byte(raw), &r); err != nil || r.SmokeTest.On() != on {
			t.Errorf("%s: on = %v, %v; want %v", raw, r.SmokeTest.On(), err, on)
		}
		out, _ := json.Marshal(r)
		var back Recipe
		if err := json.Unmarshal(out, &back); err != nil || back != r {
			t.Errorf("%s: round trip through %s gives %+v", raw, out, back)
		}
	}
	if !(Recipe{}).SmokeTest.On() || NewToggle(false).On() || !NewToggle(true).On() {
		t.Error("the zero recipe's smoke test is off, or NewToggle is wrong")
	}
	var r Recipe
	if err := json.Unmarshal([]byte(`{"smokeTest":"no"}`), &r); err == nil {
		t.Error(`"smokeTest": "no" was taken`)
	}
}
