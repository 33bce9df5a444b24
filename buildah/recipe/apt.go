package recipe

import (
	"fmt"
	"strings"
)

// ValidateAptLine checks one trimmed, non-empty, non-comment APT line and
// returns "" when it is accepted or the reason it is refused. An APT line is
// a Debian package name ([a-z0-9][a-z0-9+.-]+, at least two characters),
// optionally followed by "=version" (Debian version characters
// [A-Za-z0-9.+~:-], starting with a digit) or by "/release"
// ([a-z0-9][a-z0-9.-]*). Options, file names (*.deb) and a trailing "-"
// (which asks apt-get to remove the package) are refused.
func ValidateAptLine(line string) string {
	if r := commonReason(line); r != "" {
		return r
	}
	if line[0] == '-' {
		return "apt-get options are not accepted, only package names"
	}
	if suf, ok := hasSuffixFold(line, ".deb", ".udeb", ".ddeb", ".dsc", ".changes"); ok {
		return fmt.Sprintf("looks like a package file (%s): only package names are accepted", suf)
	}
	name, rest := line, ""
	if i := strings.IndexAny(line, "=/"); i >= 0 {
		name, rest = line[:i], line[i:]
	}
	isNameChar := or(or(isDigit, isLower), inSet("+.-"))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case isUpper(c):
			return fmt.Sprintf("%q at column %d: Debian package names are lowercase", string(c), i+1)
		case i == 0 && !isDigit(c) && !isLower(c):
			if r := trailingComment(line, i); r != "" {
				return r
			}
			return fmt.Sprintf("%q at column 1: a Debian package name starts with a lowercase letter or a digit", string(c))
		case !isNameChar(c):
			return badChar(line, i, "a Debian package name (a-z, 0-9, +, -, .)")
		}
	}
	switch {
	case name == "":
		return fmt.Sprintf("missing package name before %q", rest[:1])
	case len(name) < 2:
		return "a Debian package name has at least 2 characters"
	case strings.HasSuffix(name, "-"):
		return "a trailing \"-\" would make apt-get remove the package"
	}
	if rest == "" {
		return ""
	}
	off := len(name) + 1
	val := rest[1:]
	if rest[0] == '=' {
		if val == "" {
			return "missing version after \"=\""
		}
		if !isDigit(val[0]) {
			return fmt.Sprintf("%q at column %d: a Debian version starts with a digit", string(val[0]), off+1)
		}
		ok := or(isAlnum, inSet(".+~:-"))
		for i := 0; i < len(val); i++ {
			if !ok(val[i]) {
				return badChar(line, off+i, "a Debian version (A-Z, a-z, 0-9, . + ~ : -)")
			}
		}
		return ""
	}
	if val == "" {
		return "missing release after \"/\""
	}
	if !isDigit(val[0]) && !isLower(val[0]) {
		return fmt.Sprintf("%q at column %d: a release name starts with a lowercase letter or a digit", string(val[0]), off+1)
	}
	ok := or(or(isDigit, isLower), inSet(".-"))
	for i := 0; i < len(val); i++ {
		if !ok(val[i]) {
			return badChar(line, off+i, "a release name (a-z, 0-9, ., -)")
		}
	}
	return ""
}
