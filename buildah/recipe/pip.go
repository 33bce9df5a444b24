package recipe

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

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

// PipName is the project name of an accepted pip line, normalised as PEP
// 503 says (lower case, each run of "-", "_" and "." one "-"), so that
// "PyYAML", "pyyaml" and "py_yaml" name one project: "pyyaml" for
// "PyYAML[extra]>=6; python_version>'3'".
func PipName(line string) string {
	i := 0
	for i < len(line) && (isAlnum(line[i]) || strings.IndexByte("._-", line[i]) >= 0) {
		i++
	}
	return NormalizePipName(line[:i])
}

// NormalizePipName is a Python project's name as PEP 503 compares names.
func NormalizePipName(name string) string {
	var b strings.Builder
	sep := false
	for _, c := range []byte(strings.ToLower(name)) {
		if strings.IndexByte("._-", c) >= 0 {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteByte(c)
	}
	return b.String()
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
