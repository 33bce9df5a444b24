package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseAllowCIDRs(t *testing.T) {
	got, err := parseAllowCIDRs(" 10.20.0.0/16, 192.168.7.9/24 ")
	if want := []string{"10.20.0.0/16", "192.168.7.0/24"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("parseAllowCIDRs = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"10.0.0.0", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/0", "128.0.0.0/1", "fe80::/10", "::/0"} {
		if _, err := parseAllowCIDRs(bad); err == nil || !strings.Contains(err.Error(), "--build-allow-cidr") {
			t.Errorf("parseAllowCIDRs(%q) = %v, want a refusal", bad, err)
		}
	}
}
