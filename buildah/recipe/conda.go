package recipe

import (
	"fmt"
	"regexp"
	"strings"
)

// ValidateCondaLine checks one trimmed, non-empty, non-comment conda line and
// returns "" when it is accepted or the reason it is refused. See
// parseCondaLine for the grammar.
func ValidateCondaLine(line string) string {
	_, reason := parseCondaLine(line)
	return reason
}

// parseCondaLine checks a conda line and returns the match spec to pass to
// "conda install", or a reason. The accepted grammar is a subset of conda's
// MatchSpec:
//
//	[CHANNEL[/SUBDIR...]:[NAMESPACE]:]NAME[VERSION[BUILD]][[key=value,...]]
//
// where VERSION is written "=1.17", "==1.17*", ">=1.2,<2", "1.2|1.3" or after
// a space ("numpy 1.17 py38_0", one argument), and bracket values are unquoted
// from [A-Za-z0-9._*+!<>=~/-] (conda also allows quoted values; we admit no
// quote at all, so that a spec can always be wrapped in single quotes). The
// forms "-c CHANNEL::spec" and "-c CHANNEL spec" (as the platform's docs
// show) are rewritten to "CHANNEL::spec", so that only match specs reach
// conda. Channel URLs, options and package files are refused: packages come
// from named channels only.
func parseCondaLine(line string) (string, string) {
	if r := commonReason(line); r != "" {
		return "", r
	}
	var fields []string
	for _, f := range strings.Split(line, " ") {
		if f != "" {
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		return "", "empty line"
	}
	if fields[0] == "-c" || fields[0] == "--channel" {
		opt := fields[0]
		switch {
		case len(fields) < 2:
			return "", fmt.Sprintf("missing channel after %s", opt)
		case strings.Contains(fields[1], "::"):
			// "-c conda-forge::numpy==1.17*": the channel is in the spec.
			fields = fields[1:]
		case len(fields) < 3:
			return "", fmt.Sprintf("missing package after %s %s", opt, fields[1])
		case strings.Contains(fields[2], "::"):
			return "", fmt.Sprintf("two channels: write either %s CHANNEL spec or CHANNEL::spec", opt)
		case strings.Contains(fields[1], "://"):
			return "", "channel URLs are not accepted: name the channel, e.g. -c conda-forge numpy"
		case strings.HasPrefix(fields[1], "-"), strings.Contains(fields[1], ":"):
			return "", fmt.Sprintf("%q is not a channel name", fields[1])
		default:
			fields = append([]string{fields[1] + "::" + fields[2]}, fields[3:]...)
		}
	} else if strings.HasPrefix(fields[0], "-") {
		return "", "conda options are not accepted, only match specs (write -c CHANNEL spec or CHANNEL::spec)"
	}
	spec := strings.Join(fields, " ")
	if r := checkCondaSpec(spec); r != "" {
		return "", r
	}
	return spec, ""
}

var (
	condaIdentChar = or(isAlnum, inSet("._-"))
	condaVerChar   = or(isAlnum, inSet("._+!*"))
	condaBuildChar = or(isAlnum, inSet("._+*"))
	condaValChar   = or(isAlnum, inSet("._*+!<>=~/-"))
	condaKeyRe     = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
)

// condaIdent checks a channel segment, namespace or package name.
func condaIdent(s, what string) string {
	if s == "" {
		return "missing " + what
	}
	if s[0] == '-' || s[0] == '.' {
		return fmt.Sprintf("%s %q must start with a letter, a digit or \"_\"", what, s)
	}
	for i := 0; i < len(s); i++ {
		if !condaIdentChar(s[i]) {
			if s[i] == '#' {
				return "\"#\" is not allowed: only whole-line comments are allowed; put the comment on its own line"
			}
			return fmt.Sprintf("%q is not allowed in a conda %s (letters, digits, _ . -)", string(s[i]), what)
		}
	}
	return ""
}

// checkCondaSpec checks a normalised (single-spaced) conda match spec.
func checkCondaSpec(spec string) string {
	if suf, ok := hasSuffixFold(spec, ".tar.bz2", ".conda", ".tar", ".txt", ".yml", ".yaml"); ok {
		return fmt.Sprintf("looks like a file (%s): only match specs are accepted", suf)
	}
	if strings.Contains(spec, "://") {
		return "channel URLs are not accepted: name the channel, e.g. conda-forge::numpy"
	}
	if i := strings.Index(spec, " #"); i >= 0 {
		return trailingComment(spec, i+1)
	}
	s := spec
	if i := strings.IndexByte(s, '['); i >= 0 {
		if !strings.HasSuffix(s, "]") {
			return "a [key=value,...] part must end the spec"
		}
		inner := s[i+1 : len(s)-1]
		s = s[:i]
		if inner == "" {
			return "empty [] part"
		}
		if strings.ContainsAny(inner, "[]") {
			return "nested brackets are not accepted"
		}
		for _, kv := range strings.Split(inner, ",") {
			k, v, ok := strings.Cut(kv, "=")
			switch {
			case !ok:
				return fmt.Sprintf("%q in [...] is not key=value", kv)
			case !condaKeyRe.MatchString(k):
				return fmt.Sprintf("%q is not a match spec key", k)
			case v == "":
				return fmt.Sprintf("missing value for %s", k)
			}
			for j := 0; j < len(v); j++ {
				if v[j] == '"' {
					return "quotes are not accepted in [...]: write the value unquoted, e.g. numpy[version=>=1.2]"
				}
				if !condaValChar(v[j]) {
					return fmt.Sprintf("%q is not allowed in the value of %s (letters, digits, . _ * + ! < > = ~ / -)", string(v[j]), k)
				}
			}
		}
	}
	switch n := strings.Count(s, ":"); n {
	case 0:
	case 2:
		parts := strings.SplitN(s, ":", 3)
		if parts[0] == "" {
			return "missing channel before \"::\""
		}
		for _, seg := range strings.Split(parts[0], "/") {
			if r := condaIdent(seg, "channel"); r != "" {
				return r
			}
		}
		if parts[1] != "" {
			if r := condaIdent(parts[1], "namespace"); r != "" {
				return r
			}
		}
		s = parts[2]
	default:
		return "a channel is written CHANNEL::name (or CHANNEL:NAMESPACE:name)"
	}
	end := strings.IndexAny(s, " =<>!~")
	if end < 0 {
		end = len(s)
	}
	if r := condaIdent(s[:end], "package name"); r != "" {
		return r
	}
	vb := s[end:]
	if vb == "" {
		return ""
	}
	var version, build string
	if vb[0] == ' ' {
		parts := strings.Split(vb[1:], " ")
		if len(parts) > 2 {
			return "too many space-separated parts: a conda spec is name [version [build]], one package a line"
		}
		version = parts[0]
		if len(parts) == 2 {
			build = parts[1]
		}
	} else {
		version, build, _ = strings.Cut(vb, " ")
		if strings.Contains(build, " ") {
			return "too many space-separated parts: a conda spec is name [version [build]], one package a line"
		}
	}
	// "=1.17=py38_0": conda's name=version=build form.
	if strings.HasPrefix(version, "=") && !strings.HasPrefix(version, "==") {
		if v, b, ok := strings.Cut(version[1:], "="); ok {
			if build != "" {
				return "two builds given"
			}
			version, build = "="+v, b
			if build == "" {
				return "missing build after \"=\""
			}
		}
	}
	if r := condaVersion(version); r != "" {
		return r
	}
	if build != "" {
		if !isAlnum(build[0]) && build[0] != '_' && build[0] != '*' {
			return fmt.Sprintf("build %q must start with a letter, a digit, \"_\" or \"*\"", build)
		}
		for j := 0; j < len(build); j++ {
			if !condaBuildChar(build[j]) {
				return fmt.Sprintf("%q is not allowed in a conda build string (letters, digits, . _ + *)", string(build[j]))
			}
		}
	}
	return ""
}

// condaVersion checks a conda version expression: atoms joined by "," (and)
// or "|" (or), each an optional operator and a version that starts with a
// digit or "*".
func condaVersion(v string) string {
	if v == "" {
		return "missing version"
	}
	for _, atom := range splitAny(v, ",|") {
		ver := atom
		for _, op := range []string{"===", "==", "!=", ">=", "<=", "~=", ">", "<", "="} {
			if strings.HasPrefix(ver, op) {
				ver = ver[len(op):]
				break
			}
		}
		if ver == "" {
			return fmt.Sprintf("missing version in %q", v)
		}
		if !isDigit(ver[0]) && ver[0] != '*' {
			return fmt.Sprintf("version %q must start with a digit or \"*\" (one package a line)", ver)
		}
		for j := 0; j < len(ver); j++ {
			if !condaVerChar(ver[j]) {
				return fmt.Sprintf("%q is not allowed in a conda version (letters, digits, . _ + ! *, joined by , or |)", string(ver[j]))
			}
		}
	}
	return ""
}

// splitAny splits s at every byte in seps, keeping empty parts.
func splitAny(s, seps string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(seps, s[i]) >= 0 {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
