package recipe

import (
	"fmt"
	"strings"
	"unicode/utf8"
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

// Text is a recipe as it was typed: the base image and three package lists,
// one package a line. (The store keeps the same text beside the recipe's pull
// secret; this package does not import the store, so that it stays pure Go.)
type Text struct {
	BaseImage, Apt, Conda, Pip string
}

// Parse validates the three package lists of a recipe and returns the
// accepted packages, in order. When any line is bad it returns a *RecipeError
// that lists every bad line of every list (and no Packages), so that a recipe
// is either taken whole or refused whole: a bad line is never dropped.
//
// It does not parse BaseImage (image references are parsed elsewhere); it only
// refuses an empty one, with Field "baseImage" and Reason "required".
func Parse(r Text) (Packages, error) {
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
