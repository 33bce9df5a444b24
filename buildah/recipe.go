package buildah

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"imagehub/store"
)

// This file checks the package lists of a recipe. Every accepted package is
// later written as one single-quoted shell argument (see containerfile.go), so
// the one property that keeps a build safe is that no accepted package holds a
// single quote; on top of that each grammar is strict enough that an accepted
// package can never be read as an option of its package manager (it never
// starts with "-") nor as a local file, a path or a URL.
//
// Only whole-line comments are recognised: a line whose first non-space
// character is "#" is ignored, while a "#" after a package is refused rather
// than stripped, so that what is installed is exactly what was written.

// maxLineLength is the longest package line accepted, in bytes. A real package
// line is far shorter; the limit keeps error messages and the generated RUN
// lines readable.
const maxLineLength = 200

// Packages are the validated package arguments of a recipe, in the order
// written, comments and blank lines removed. Each entry is exactly one argument
// of its package manager; conda entries are normalised match specs (the
// "-c CHANNEL" forms are rewritten to "CHANNEL::spec").
type Packages struct {
	Apt, Conda, Pip []string
}

// LineError is one refused line of a recipe. It carries the line number and
// the reason so that the administrator can fix the recipe without guessing:
// a bad line is never dropped silently.
type LineError struct {
	// Field is "apt", "conda", "pip" or "baseImage".
	Field string
	// Line is 1-based and counts blank and comment lines too; it is 0 for
	// the base image.
	Line int
	// Text is the refused line, trimmed of surrounding spaces.
	Text string
	// Reason says in plain words why the line was refused.
	Reason string
}

// Error formats the refused line as `pip line 3 "numpy>>1": <reason>`, so
// that it can be read on its own in a log or a build's failure reason.
func (e LineError) Error() string {
	if e.Line == 0 {
		if e.Text == "" {
			return fmt.Sprintf("%s: %s", e.Field, e.Reason)
		}
		return fmt.Sprintf("%s %q: %s", e.Field, shorten(e.Text), e.Reason)
	}
	return fmt.Sprintf("%s line %d %q: %s", e.Field, e.Line, shorten(e.Text), e.Reason)
}

// RecipeError lists every refused line of a recipe, not just the first, so
// that one round trip through the form shows everything that has to be fixed.
type RecipeError struct {
	Lines []LineError
}

// Error joins all refused lines into one message for logs and API errors.
func (e *RecipeError) Error() string {
	parts := make([]string, len(e.Lines))
	for i, l := range e.Lines {
		parts[i] = l.Error()
	}
	noun := "lines"
	if len(e.Lines) == 1 {
		noun = "line"
	}
	return fmt.Sprintf("recipe refused (%d bad %s): %s", len(e.Lines), noun, strings.Join(parts, "; "))
}

// Fields returns one human message per field that has refused lines, e.g.
// {"pip": `line 3: "numpy>>1": <reason>; line 5: ...`}, ready to be shown
// next to the form field or returned as a 422 JSON body.
func (e *RecipeError) Fields() map[string]string {
	byField := map[string][]string{}
	for _, l := range e.Lines {
		var msg string
		switch {
		case l.Line > 0:
			msg = fmt.Sprintf("line %d: %q: %s", l.Line, shorten(l.Text), l.Reason)
		case l.Text != "":
			msg = fmt.Sprintf("%q: %s", shorten(l.Text), l.Reason)
		default:
			msg = l.Reason
		}
		byField[l.Field] = append(byField[l.Field], msg)
	}
	out := make(map[string]string, len(byField))
	for f, msgs := range byField {
		out[f] = strings.Join(msgs, "; ")
	}
	return out
}

// shorten keeps messages readable when a refused line is very long.
func shorten(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	// Cut on a rune boundary so that the message stays valid UTF-8.
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// ParsePackages validates the three package lists of a recipe and returns the
// accepted packages, in order. When any line is bad it returns a *RecipeError
// that lists every bad line of every list (and no Packages), so that a recipe
// is either taken whole or refused whole: a bad line is never dropped.
//
// It does not parse BaseImage (image references are parsed elsewhere); it only
// refuses an empty one, with Field "baseImage" and Reason "required".
func ParsePackages(r store.Recipe) (Packages, error) {
	var p Packages
	var bad []LineError
	if strings.TrimSpace(r.BaseImage) == "" {
		bad = append(bad, LineError{Field: "baseImage", Reason: "required"})
	}
	p.Apt, bad = parseList("apt", r.Apt, aptArg, bad)
	p.Conda, bad = parseList("conda", r.Conda, parseCondaLine, bad)
	p.Pip, bad = parseList("pip", r.Pip, pipArg, bad)
	if len(bad) > 0 {
		return Packages{}, &RecipeError{Lines: bad}
	}
	return p, nil
}

// parseList splits one textarea into lines, skips blank and comment lines,
// and checks every other line with check, which returns the argument to
// install or a reason.
func parseList(field, text string, check func(string) (string, string), bad []LineError) ([]string, []LineError) {
	var out []string
	for i, raw := range strings.Split(text, "\n") {
		line := trimLine(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		arg, reason := check(line)
		if reason != "" {
			bad = append(bad, LineError{Field: field, Line: i + 1, Text: line, Reason: reason})
			continue
		}
		out = append(out, arg)
	}
	return out, bad
}

// trimLine removes the spaces, tabs and carriage returns (from CRLF line ends)
// around a line. Other white space, such as a no-break space, is left in place
// and refused as non-ASCII, because it is usually a sign of pasted text.
func trimLine(s string) string {
	return strings.Trim(s, " \t\r")
}

// aptArg and pipArg adapt the validators to parseList: apt and pip lines are
// installed exactly as written.
func aptArg(line string) (string, string) { return line, ValidateAptLine(line) }
func pipArg(line string) (string, string) { return line, ValidatePipLine(line) }

// Byte classes of the grammars: ASCII only, on purpose.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isLower(c) || isUpper(c) }
func inSet(set string) func(byte) bool {
	return func(c byte) bool { return strings.IndexByte(set, c) >= 0 }
}
func or(f, g func(byte) bool) func(byte) bool { return func(c byte) bool { return f(c) || g(c) } }

// commonReason applies the rules shared by every package manager: one
// printable-ASCII line of at most maxLineLength bytes without single quotes
// or backslashes. Non-ASCII is refused so that look-alike letters (a Cyrillic
// "а" in "nаmpy") cannot name a different package than the one read.
func commonReason(line string) string {
	if line == "" {
		return "empty line"
	}
	if len(line) > maxLineLength {
		return fmt.Sprintf("too long: %d characters, at most %d", len(line), maxLineLength)
	}
	col := 0
	for _, r := range line {
		col++
		switch {
		case r == utf8.RuneError:
			return fmt.Sprintf("invalid or replacement character at column %d: only plain ASCII is accepted", col)
		case r == '\n' || r == '\r':
			return fmt.Sprintf("line break at column %d: write one package a line", col)
		case r == '\t':
			return fmt.Sprintf("tab at column %d: use a single space", col)
		case r < 0x20 || r == 0x7f:
			return fmt.Sprintf("control character %U at column %d", r, col)
		case r >= 0x80:
			return fmt.Sprintf("non-ASCII character %#U at column %d: only plain ASCII is accepted (look-alike letters could name another package)", r, col)
		case r == '\'':
			return fmt.Sprintf("single quote at column %d: quotes are not accepted (each package is quoted for the shell already)", col)
		case r == '\\':
			return fmt.Sprintf("backslash at column %d is not accepted", col)
		}
	}
	return ""
}

// trailingComment reports a "#" that follows a package, because only
// whole-line comments are ignored. It returns "" when there is none.
func trailingComment(line string, i int) string {
	if i >= 0 && i < len(line) && line[i] == '#' {
		return fmt.Sprintf("\"#\" at column %d: only whole-line comments are allowed; put the comment on its own line", i+1)
	}
	return ""
}

// badChar explains why the byte at i is not accepted in what.
func badChar(line string, i int, what string) string {
	if r := trailingComment(line, i); r != "" {
		return r
	}
	if rest := strings.TrimLeft(line[i:], " "); strings.HasPrefix(rest, "#") {
		return trailingComment(line, len(line)-len(rest))
	}
	c := line[i]
	if c == ' ' {
		return fmt.Sprintf("space at column %d: write one package a line", i+1)
	}
	return fmt.Sprintf("%q at column %d is not allowed in %s", string(c), i+1, what)
}

// hasSuffixFold reports whether s ends with one of the suffixes, ignoring case.
func hasSuffixFold(s string, suffixes ...string) (string, bool) {
	ls := strings.ToLower(s)
	for _, suf := range suffixes {
		if strings.HasSuffix(ls, suf) {
			return suf, true
		}
	}
	return "", false
}

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

// ValidatePipLine checks one trimmed, non-empty, non-comment pip line and
// returns "" when it is accepted or the reason it is refused. A pip line is a
// PEP 508 requirement without a URL: a name
// ([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?), optional extras ("[a,b]"),
// optional version specifiers (==, !=, <=, >=, <, >, ~=, ===, comma
// separated, PEP 440 versions, "1.2.*" after == and !=) and an optional
// environment marker after ";" whose strings are double-quoted.
//
// URLs ("pkg @ https://...", "git+..."), paths, archive file names and pip
// options ("-e", "-r file", "--index-url", ...) are refused: packages may only
// come from the index configured in the base image, so that a recipe cannot
// pull code from an arbitrary host or file (supply chain), and no option can
// change how pip runs.
func ValidatePipLine(line string) string {
	if r := commonReason(line); r != "" {
		return r
	}
	head := line
	if i := strings.IndexByte(line, ';'); i >= 0 {
		head = line[:i]
	}
	lh := strings.ToLower(head)
	switch {
	case strings.HasPrefix(line, "-"):
		return fmt.Sprintf("URLs and pip options are not accepted: %q is a pip option; packages come only from the configured index", strings.SplitN(line, " ", 2)[0])
	case strings.Contains(head, "://") || strings.Contains(head, "@") ||
		strings.HasPrefix(lh, "git+") || strings.HasPrefix(lh, "hg+") || strings.HasPrefix(lh, "svn+") ||
		strings.HasPrefix(lh, "bzr+") || strings.HasPrefix(lh, "file:"):
		return "URLs and pip options are not accepted: name the package (and a version), packages come only from the configured index"
	case strings.HasPrefix(line, ".") || strings.HasPrefix(line, "/") || strings.HasPrefix(line, "~"):
		return "paths are not accepted: name the package (and a version), packages come only from the configured index"
	}
	p := pipParser{s: line}
	return p.requirement()
}

// pipParser is a small recursive-descent parser for a PEP 508 requirement
// without a URL.
type pipParser struct {
	s string
	i int
}

func (p *pipParser) ws() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *pipParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// unexpected explains the byte at the parser's position.
func (p *pipParser) unexpected(what string) string {
	if p.i >= len(p.s) {
		return "unexpected end of line, expected " + what
	}
	if r := trailingComment(p.s, p.i); r != "" {
		return r
	}
	return fmt.Sprintf("%q at column %d: expected %s", string(p.s[p.i]), p.i+1, what)
}

// name reads a PEP 508 name (a package or an extra).
func (p *pipParser) name(what string) (string, string) {
	start := p.i
	if !isAlnum(p.peek()) {
		return "", p.unexpected(what + " (starting with a letter or a digit)")
	}
	for p.i < len(p.s) && (isAlnum(p.s[p.i]) || strings.IndexByte("._-", p.s[p.i]) >= 0) {
		p.i++
	}
	n := p.s[start:p.i]
	if !isAlnum(n[len(n)-1]) {
		return "", fmt.Sprintf("%s %q must end with a letter or a digit", what, n)
	}
	return n, ""
}

func (p *pipParser) requirement() string {
	n, r := p.name("a package name")
	if r != "" {
		return r
	}
	if suf, ok := hasSuffixFold(n, ".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".egg", ".txt"); ok {
		return fmt.Sprintf("looks like a file name (%s): name the package, packages come only from the configured index", suf)
	}
	p.ws()
	if p.peek() == '[' {
		p.i++
		p.ws()
		if p.peek() != ']' {
			for {
				if _, r := p.name("an extra name"); r != "" {
					return r
				}
				p.ws()
				if p.peek() != ',' {
					break
				}
				p.i++
				p.ws()
			}
		}
		if p.peek() != ']' {
			return p.unexpected("\",\" or \"]\" in the extras")
		}
		p.i++
		p.ws()
	}
	switch c := p.peek(); {
	case c == '(':
		return fmt.Sprintf("\"(\" at column %d: write version specifiers without parentheses, e.g. numpy>=1.2", p.i+1)
	case strings.IndexByte("<>=!~", c) >= 0:
		for {
			if r := p.specifier(); r != "" {
				return r
			}
			p.ws()
			if p.peek() != ',' {
				break
			}
			p.i++
			p.ws()
		}
	}
	p.ws()
	if p.i == len(p.s) {
		return ""
	}
	if p.peek() != ';' {
		if p.peek() == '-' {
			return fmt.Sprintf("URLs and pip options are not accepted: %q at column %d; write one package a line", p.s[p.i:], p.i+1)
		}
		if isAlnum(p.peek()) {
			return fmt.Sprintf("%q at column %d: write one package a line", p.s[p.i:], p.i+1)
		}
		return p.unexpected("a version specifier, \";\" and a marker, or the end of the line")
	}
	p.i++
	p.ws()
	if p.i == len(p.s) {
		return "missing environment marker after \";\""
	}
	m := markerParser{s: p.s, i: p.i}
	if r := m.or(0); r != "" {
		return "environment marker: " + r
	}
	m.ws()
	if m.i != len(m.s) {
		return "environment marker: " + m.unexpected("\"and\", \"or\" or the end of the line")
	}
	return ""
}

// pep440 is the version pattern of PEP 440 (as in the packaging library),
// anchored.
var pep440 = regexp.MustCompile(`(?i)^v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*` +
	`(?:[-_.]?(?:alpha|a|beta|b|preview|pre|c|rc)[-_.]?[0-9]*)?` +
	`(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?` +
	`(?:[-_.]?dev[-_.]?[0-9]*)?` +
	`(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$`)

// pep440Prefix is the prefix-match form allowed after == and !=.
var pep440Prefix = regexp.MustCompile(`(?i)^v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*\.\*$`)

var pipOps = []string{"===", "~=", "==", "!=", "<=", ">=", "<", ">"}

// specifier reads one "op version".
func (p *pipParser) specifier() string {
	start := p.i
	for p.i < len(p.s) && strings.IndexByte("<>=!~", p.s[p.i]) >= 0 {
		p.i++
	}
	op := p.s[start:p.i]
	if op == "" {
		return p.unexpected("a version specifier such as >=1.2")
	}
	if !slices.Contains(pipOps, op) {
		return fmt.Sprintf("unknown version operator %q at column %d (use ==, !=, <=, >=, <, >, ~= or ===)", op, start+1)
	}
	p.ws()
	vstart := p.i
	for p.i < len(p.s) && (isAlnum(p.s[p.i]) || strings.IndexByte("._+!*-", p.s[p.i]) >= 0) {
		p.i++
	}
	v := p.s[vstart:p.i]
	if v == "" {
		return p.unexpected("a version after " + op)
	}
	switch {
	case op == "===":
	case pep440.MatchString(v):
	case (op == "==" || op == "!=") && pep440Prefix.MatchString(v):
	case strings.Contains(v, "*"):
		return fmt.Sprintf("version %q: \"*\" is only allowed as a trailing \".*\" after == or !=", v)
	default:
		return fmt.Sprintf("%q is not a valid version (PEP 440), e.g. 1.2, 1.2.3rc1, 2.0.post1", v)
	}
	return ""
}

// markerVars are the environment marker variables of PEP 508 (and "extras"
// and "dependency_groups" of PEP 751).
var markerVars = map[string]bool{
	"python_version": true, "python_full_version": true, "os_name": true, "sys_platform": true,
	"platform_release": true, "platform_system": true, "platform_version": true, "platform_machine": true,
	"platform_python_implementation": true, "implementation_name": true, "implementation_version": true,
	"extra": true, "extras": true, "dependency_groups": true,
}

// markerParser parses a PEP 508 environment marker whose strings are
// double-quoted (single quotes are refused before parsing).
type markerParser struct {
	s string
	i int
}

func (m *markerParser) ws() {
	for m.i < len(m.s) && m.s[m.i] == ' ' {
		m.i++
	}
}

func (m *markerParser) unexpected(what string) string {
	if m.i >= len(m.s) {
		return "unexpected end of line, expected " + what
	}
	if r := trailingComment(m.s, m.i); r != "" {
		return r
	}
	return fmt.Sprintf("%q at column %d: expected %s", string(m.s[m.i]), m.i+1, what)
}

// word reads an identifier at the position without consuming it.
func (m *markerParser) word() string {
	j := m.i
	for j < len(m.s) && (isAlnum(m.s[j]) || m.s[j] == '_') {
		j++
	}
	return m.s[m.i:j]
}

// keyword consumes kw when it is the next word.
func (m *markerParser) keyword(kw string) bool {
	m.ws()
	if m.word() == kw {
		m.i += len(kw)
		return true
	}
	return false
}

// maxMarkerDepth bounds nested parentheses, so a hostile line cannot recurse
// deeply (the line length bounds it already; this keeps it obvious).
const maxMarkerDepth = 20

func (m *markerParser) or(depth int) string {
	for {
		if r := m.and(depth); r != "" {
			return r
		}
		if !m.keyword("or") {
			return ""
		}
	}
}

func (m *markerParser) and(depth int) string {
	for {
		if r := m.expr(depth); r != "" {
			return r
		}
		if !m.keyword("and") {
			return ""
		}
	}
}

func (m *markerParser) expr(depth int) string {
	m.ws()
	if m.i < len(m.s) && m.s[m.i] == '(' {
		if depth >= maxMarkerDepth {
			return "too many nested parentheses"
		}
		m.i++
		if r := m.or(depth + 1); r != "" {
			return r
		}
		m.ws()
		if m.i >= len(m.s) || m.s[m.i] != ')' {
			return m.unexpected("\")\"")
		}
		m.i++
		return ""
	}
	if r := m.value(); r != "" {
		return r
	}
	m.ws()
	switch {
	case m.keyword("in"):
	case m.keyword("not"):
		if !m.keyword("in") {
			return m.unexpected("\"in\" after \"not\"")
		}
	default:
		start := m.i
		for m.i < len(m.s) && strings.IndexByte("<>=!~", m.s[m.i]) >= 0 {
			m.i++
		}
		op := m.s[start:m.i]
		if op == "" {
			return m.unexpected("a comparison (==, !=, <, <=, >, >=, ~=, ===, in, not in)")
		}
		if !slices.Contains(pipOps, op) {
			return fmt.Sprintf("unknown operator %q at column %d", op, start+1)
		}
	}
	return m.value()
}

// value reads a marker variable or a double-quoted string.
func (m *markerParser) value() string {
	m.ws()
	if m.i < len(m.s) && m.s[m.i] == '"' {
		end := strings.IndexByte(m.s[m.i+1:], '"')
		if end < 0 {
			return fmt.Sprintf("unterminated string starting at column %d", m.i+1)
		}
		m.i += end + 2
		return ""
	}
	w := m.word()
	if w == "" {
		return m.unexpected("a marker variable such as python_version, or a \"double-quoted\" string")
	}
	if !markerVars[w] {
		return fmt.Sprintf("unknown marker variable %q at column %d", w, m.i+1)
	}
	m.i += len(w)
	return ""
}
