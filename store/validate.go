package store

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// nameRE is the rule shared by image display names, image names, group names
// and secret names: what Kubernetes accepts as a DNS-1123 subdomain label
// piece, so that every name can be used as a label or resource name later.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)

// MaxNameLen is the longest name or display name accepted.
const MaxNameLen = 63

// nameReason returns why s is not a valid name, or "" when it is.
func nameReason(s string) string {
	switch {
	case s == "":
		return "Required."
	case utf8.RuneCountInString(s) > MaxNameLen:
		return "At most 63 characters."
	case strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\r\n"):
		return "No spaces: only lowercase letters, digits, '-' and '.'."
	case strings.ToLower(s) != s:
		return "No uppercase letters: only lowercase letters, digits, '-' and '.'."
	case !nameRE.MatchString(s):
		if !isASCII(s) {
			return "Only plain lowercase letters (a-z), digits, '-' and '.'; this contains other characters."
		}
		return "Only lowercase letters, digits, '-' and '.', starting and ending with a letter or digit."
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hostRE accepts a registry host: a DNS name or IPv4 address with an optional port.
var hostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$`)

func hostReason(s string) string {
	switch {
	case s == "":
		return "Required."
	case len(s) > 253:
		return "At most 253 characters."
	case !hostRE.MatchString(s):
		return "A registry host such as registry.example.com or 127.0.0.1:5000 (no scheme, no path, lowercase)."
	}
	return PortReason(s)
}

// PortReason returns why the port of a registry host ("host:port", an IPv6
// address in brackets) is not a TCP port, from 1 to 65535, or "" when it is
// one or the host names none. It is the rule of a secret's registry host
// and, in the web layer, of the host of every image reference, whose parser
// takes any digits.
func PortReason(hostport string) string {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || i < strings.LastIndexByte(hostport, ']') {
		return ""
	}
	if n, err := strconv.ParseUint(hostport[i+1:], 10, 16); err != nil || n == 0 {
		return "The port must be a number from 1 to 65535."
	}
	return ""
}

// textReason checks free text such as a description: bounded, and no control
// characters other than newlines and tabs.
func textReason(s string, max int) string {
	if utf8.RuneCountInString(s) > max {
		return "At most " + strconv.Itoa(max) + " characters."
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' {
			return "Contains control characters."
		}
	}
	return ""
}
