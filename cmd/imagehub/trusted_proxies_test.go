package main

import (
	"strings"
	"testing"
)

func TestTrustedProxiesFlag(t *testing.T) {
	c, err := parseServeFlags([]string{"--trusted-proxies", "10.0.0.0/8, 192.168.1.5,fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range c.trustedProxies {
		got = append(got, n.String())
	}
	if strings.Join(got, " ") != "10.0.0.0/8 192.168.1.5/32 fd00::/8" {
		t.Errorf("trusted proxies = %v", got)
	}
	t.Setenv("IMAGEHUB_TRUSTED_PROXIES", "172.16.0.0/12")
	if c, err := parseServeFlags(nil); err != nil || len(c.trustedProxies) != 1 || c.trustedProxies[0].String() != "172.16.0.0/12" {
		t.Errorf("from IMAGEHUB_TRUSTED_PROXIES: %v, %v", c.trustedProxies, err)
	}
	t.Setenv("IMAGEHUB_TRUSTED_PROXIES", "")
	if c, err := parseServeFlags(nil); err != nil || len(c.trustedProxies) != 0 {
		t.Errorf("unset: %v, %v; want none", c.trustedProxies, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.0/8,,x"} {
		if _, err := parseServeFlags([]string{"--trusted-proxies", bad}); err == nil || !strings.Contains(err.Error(), "--trusted-proxies") {
			t.Errorf("%q: %v, want an error naming the flag", bad, err)
		}
	}
}
