package remote

import "strings"

// Host returns the registry host of a normalised reference, in lower case
// ("docker.io/library/busybox:latest" → "docker.io"); a normalised
// reference always names one.
func Host(normalized string) string {
	host, _, _ := strings.Cut(normalized, "/")
	return strings.ToLower(host)
}

// SameHost compares registry hosts, taking Docker Hub's several names as
// one: a credential meant for one host must never be offered to another.
func SameHost(a, b string) bool {
	hub := func(h string) string {
		switch h {
		case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
			return "docker.io"
		}
		return h
	}
	return hub(strings.ToLower(a)) == hub(strings.ToLower(b))
}
