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
