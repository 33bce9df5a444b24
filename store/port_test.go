package store_test

import (
	"testing"

	"imagehub/store"
)

// TestPortReason: a registry host's port is a TCP port, from 1 to 65535;
// a host without one, or an IPv6 address in brackets, has nothing to say.
func TestPortReason(t *testing.T) {
	for hostport, bad := range map[string]bool{
		"docker.io": false, "127.0.0.1:5000": false, "reg:1": false, "reg:65535": false, "[::1]": false, "[::1]:5000": false,
		"reg:0": true, "reg:65536": true, "reg:99999": true, "reg:123456": true, "reg:": true, "reg:-1": true, "[::1]:70000": true,
	} {
		if got := store.PortReason(hostport); (got != "") != bad {
			t.Errorf("PortReason(%q) = %q, want a reason: %v", hostport, got, bad)
		}
	}
}
