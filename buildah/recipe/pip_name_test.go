package recipe

import "testing"

// TestPipName: the project a pip line names, compared as PEP 503 says.
func TestPipName(t *testing.T) {
	for line, want := range map[string]string{
		"pyyaml":    "pyyaml",
		"PyYAML>=6": "pyyaml",
		"py_yaml[extra]==6.0; python_version>\"3\"": "py-yaml",
		"Zope.Interface":           "zope-interface",
		"a-_.b":                    "a-b",
		"requests [socks] ~= 2.31": "requests",
	} {
		if got := PipName(line); got != want {
			t.Errorf("PipName(%q) = %q, want %q", line, got, want)
		}
	}
	if NormalizePipName("Imagehub_Probe.Two") != PipName("imagehub-probe-two") {
		t.Error("a distribution's name and its requirement do not compare equal")
	}
}
