package handlers

import (
	"fmt"
	"html"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	nethtml "golang.org/x/net/html"
)

// htmlProblems checks HTML as the server sends it, before a browser repairs
// anything, and answers what is wrong, one line each. It reads the tokens
// (golang.org/x/net/html's tokenizer, which repairs nothing) and checks:
//   - the document: the doctype first, <html lang>, one <head> with
//     <meta charset> and a non-empty <title>, one <body>, one <main>;
//   - the syntax: known elements only, every element but the void ones closed
//     by its own end tag in order (nothing misnested, left open or closed
//     twice), no end tag for a void element, "/>" only on void and SVG
//     elements, no attribute twice on an element, no unknown character
//     reference;
//   - the attributes: each allowed on its element (the global ones, data-*
//     and aria-*, and those of the element; no inline event handlers),
//     boolean ones without a value, enumerated ones (input and button types,
//     form methods, th scope, aria-live, aria-hidden, aria-current, spellcheck,
//     autocapitalize) with an allowed value, numbers where numbers go;
//   - the ids: none empty, with spaces or twice; each id that label for=,
//     list=, aria-labelledby, aria-describedby and aria-controls name exists,
//     and a label's for= names a labelable element;
//   - the content models browsers repair silently: no flow content (div, p,
//     form, table, lists, headings, sections…) in phrasing-only elements (p,
//     span, label, button, headings, pre, legend…, through a's transparent
//     content); no interactive content or tabindex inside a or button; no
//     form in a form, label in a label, main in a landmark, header or footer
//     in a header or footer; lists, tables, definition lists and selects
//     hold only what they may (and no text), and li, dt, dd, table parts,
//     option, legend and summary sit in their parents; img has alt.
//
// With context set (the name of the element it goes into), src is a fragment
// (an htmx answer), and the document checks are left out.
func htmlProblems(src, context string) []string {
	c := &htmlChecker{ids: map[string]string{}, counts: map[string]int{}}
	if context != "" {
		c.stack = []openElement{{name: context}}
	}
	c.read(src)
	if context == "" {
		c.checkDocument()
	} else if len(c.stack) > 0 {
		c.stack = c.stack[1:]
	}
	for _, e := range slices.Backward(c.stack) {
		c.problem("<%s> is never closed", e.name)
	}
	c.checkReferences()
	return c.problems
}

// openElement is an element whose end tag has not come yet.
type openElement struct {
	name    string
	foreign bool // in SVG
}

// idReference is an attribute that names an element by its id.
type idReference struct {
	element, attr, id string
}

type htmlChecker struct {
	problems []string
	stack    []openElement
	// ids maps each id to its element ("input type=hidden" for inputs).
	ids        map[string]string
	references []idReference
	counts     map[string]int
	tokens     int
	doctype    bool
	charset    bool
	titleText  string
	inTitle    bool
}

func (c *htmlChecker) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *htmlChecker) read(src string) {
	z := nethtml.NewTokenizer(strings.NewReader(src))
	for {
		tt := z.Next()
		if tt == nethtml.ErrorToken {
			if z.Err() != io.EOF {
				c.problem("unreadable HTML: %v", z.Err())
			}
			return
		}
		raw := string(z.Raw())
		tok := z.Token()
		switch tt {
		case nethtml.DoctypeToken:
			if c.tokens > 0 || c.doctype || !strings.EqualFold(tok.Data, "html") {
				c.problem("the doctype must come first, once, and be <!DOCTYPE html>: %q", raw)
			}
			c.doctype = true
		case nethtml.TextToken:
			if p := c.parent(); p == nil || (p.name != "script" && p.name != "style") {
				c.checkCharacterReferences(raw)
			}
			c.text(tok.Data)
		case nethtml.StartTagToken, nethtml.SelfClosingTagToken:
			c.checkCharacterReferences(raw)
			c.checkRepeatedAttributes(tok.Data, raw)
			c.start(tok, tt == nethtml.SelfClosingTagToken)
		case nethtml.EndTagToken:
			c.end(tok.Data)
		}
		if tt != nethtml.CommentToken && (tt != nethtml.TextToken || strings.TrimSpace(tok.Data) != "") {
			c.tokens++
		}
	}
}

// namedReference finds named character references; html.UnescapeString
// leaves the unknown ones as they are.
var namedReference = regexp.MustCompile(`&[A-Za-z][A-Za-z0-9]*;`)

func (c *htmlChecker) checkCharacterReferences(raw string) {
	for _, ref := range namedReference.FindAllString(raw, -1) {
		if html.UnescapeString(ref) == ref {
			c.problem("unknown character reference %s", ref)
		}
	}
}

func (c *htmlChecker) parent() *openElement {
	if len(c.stack) == 0 {
		return nil
	}
	return &c.stack[len(c.stack)-1]
}

func (c *htmlChecker) text(s string) {
	if c.inTitle {
		c.titleText += s
	}
	if p := c.parent(); p != nil && strings.TrimSpace(s) != "" && !p.foreign && noTextIn[p.name] {
		c.problem("text %q directly in <%s>", strings.TrimSpace(s), p.name)
	}
}

func (c *htmlChecker) start(tok nethtml.Token, selfClosing bool) {
	name := tok.Data
	parent := c.parent()
	foreign := name == "svg" || (parent != nil && parent.foreign)
	c.counts[name]++
	attrs := c.checkAttributes(name, foreign, tok.Attr)
	switch {
	case foreign && !svgElements[name]:
		c.problem("<%s> is not an SVG element this checker knows", name)
	case !foreign && !htmlElements[name]:
		c.problem("<%s> is not an HTML element", name)
	}
	if selfClosing && !foreign && !voidElements[name] {
		c.problem("<%s/>: only void and SVG elements may end with />; <%s> needs </%s>", name, name, name)
	}
	if !foreign {
		c.checkPlace(name, attrs)
	}
	switch {
	case name == "title":
		c.inTitle = true
	case name == "html" && strings.TrimSpace(attrs["lang"]) == "":
		c.problem("<html> without lang")
	case name == "meta" && attrs["charset"] != "":
		c.charset = strings.EqualFold(attrs["charset"], "utf-8")
	}
	if voidElements[name] || (foreign && selfClosing) {
		return
	}
	c.stack = append(c.stack, openElement{name: name, foreign: foreign})
}

func (c *htmlChecker) end(name string) {
	if voidElements[name] {
		c.problem("</%s>: a void element has no end tag", name)
		return
	}
	if name == "title" {
		c.inTitle = false
	}
	i := len(c.stack) - 1
	for i >= 0 && c.stack[i].name != name {
		i--
	}
	if i < 0 {
		c.problem("</%s> closes nothing open", name)
		return
	}
	for _, e := range slices.Backward(c.stack[i+1:]) {
		c.problem("</%s> comes before </%s>: misnested or never closed", name, e.name)
	}
	c.stack = c.stack[:i]
}

// checkRepeatedAttributes reads the attribute names of a start tag as it
// was written: the tokenizer keeps only the first of each.
func (c *htmlChecker) checkRepeatedAttributes(element, raw string) {
	seen := map[string]bool{}
	rest := strings.TrimPrefix(strings.TrimSuffix(strings.TrimSuffix(raw, ">"), "/"), "<")
	rest = strings.TrimLeft(rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-:")
	for {
		rest = strings.TrimLeft(rest, " \t\n\f\r/")
		if rest == "" {
			return
		}
		end := strings.IndexAny(rest, " \t\n\f\r/=>")
		if end < 0 {
			end = len(rest)
		}
		if name := strings.ToLower(rest[:max(end, 1)]); seen[name] {
			c.problem("<%s %s>: the attribute is there twice", element, name)
		} else {
			seen[name] = true
		}
		rest = strings.TrimLeft(rest[max(end, 1):], " \t\n\f\r")
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t\n\f\r")
		switch {
		case rest == "":
			return
		case rest[0] == '"' || rest[0] == '\'':
			if i := strings.IndexByte(rest[1:], rest[0]); i >= 0 {
				rest = rest[i+2:]
			} else {
				return
			}
		default:
			if i := strings.IndexAny(rest, " \t\n\f\r"); i >= 0 {
				rest = rest[i:]
			} else {
				return
			}
		}
	}
}

// checkAttributes checks a start tag's attributes and answers them by name.
func (c *htmlChecker) checkAttributes(name string, foreign bool, attrs []nethtml.Attribute) map[string]string {
	byName := map[string]string{}
	for _, a := range attrs {
		byName[a.Key] = a.Val
		c.checkAttribute(name, foreign, a.Key, a.Val)
	}
	if id, ok := byName["id"]; ok {
		what := name
		if name == "input" {
			what += " type=" + byName["type"]
		}
		switch {
		case id == "" || strings.ContainsAny(id, " \t\n\f\r"):
			c.problem("<%s id=%q>: an id is not empty and has no spaces", name, id)
		case c.ids[id] != "":
			c.problem("id %q is used twice", id)
		default:
			c.ids[id] = what
		}
	}
	for _, ref := range []string{"for", "list", "aria-labelledby", "aria-describedby", "aria-controls"} {
		if v, ok := byName[ref]; ok && !foreign {
			for _, id := range strings.Fields(v) {
				c.references = append(c.references, idReference{element: name, attr: ref, id: id})
			}
		}
	}
	return byName
}

func (c *htmlChecker) checkAttribute(element string, foreign bool, key, val string) {
	switch {
	case foreign:
		if !svgAttributes[key] {
			c.problem("<%s %s>: not an SVG attribute this checker knows", element, key)
		}
		return
	case strings.HasPrefix(key, "on"):
		c.problem("<%s %s>: no inline event handlers (the Content-Security-Policy refuses them)", element, key)
		return
	case strings.HasPrefix(key, "data-") || strings.HasPrefix(key, "aria-"):
	case !globalAttributes[key] && !slices.Contains(elementAttributes[element], key):
		c.problem("<%s %s>: the attribute is not allowed on <%s>", element, key, element)
		return
	}
	if booleanAttributes[key] && val != "" && !strings.EqualFold(val, key) {
		c.problem("<%s %s=%q>: a boolean attribute has no value", element, key, val)
	}
	if allowed, ok := enumeratedValues[element+" "+key]; ok && !slices.Contains(allowed, strings.ToLower(val)) {
		c.problem("<%s %s=%q>: allowed values are %q", element, key, val, allowed)
	} else if allowed, ok := enumeratedValues[key]; ok && !slices.Contains(allowed, strings.ToLower(val)) {
		c.problem("<%s %s=%q>: allowed values are %q", element, key, val, allowed)
	}
	if numericAttributes[key] {
		if _, err := strconv.Atoi(val); err != nil {
			c.problem("<%s %s=%q>: not an integer", element, key, val)
		}
	}
}

// checkPlace checks that an HTML element may be where it is.
func (c *htmlChecker) checkPlace(name string, attrs map[string]string) {
	parent := ""
	if p := c.parent(); p != nil {
		parent = p.name
	}
	if allowed, ok := allowedParents[name]; ok && !slices.Contains(allowed, parent) {
		c.problem("<%s> in <%s>: it belongs in %s", name, parent, strings.Join(allowed, ", "))
	}
	inDlDiv := parent == "div" && len(c.stack) > 1 && c.stack[len(c.stack)-2].name == "dl"
	switch {
	case inDlDiv && name != "dt" && name != "dd":
		c.problem("<%s> in a <div> of a <dl>: only dt and dd go there", name)
	case !inDlDiv && parent == "div" && (name == "dt" || name == "dd"):
		c.problem("<%s> in a <div> that is not in a <dl>", name)
	}
	if allowed, ok := allowedChildren[parent]; ok && !slices.Contains(allowed, name) && !scriptSupporting[name] {
		c.problem("<%s> in <%s>: only %s go there", name, parent, strings.Join(allowed, ", "))
	}
	if flowOnly[name] && c.inPhrasing() {
		c.problem("<%s> inside <%s>, which holds phrasing content only", name, c.phrasingAncestor())
	}
	if name == "img" {
		if _, ok := attrs["alt"]; !ok {
			c.problem("<img> without alt")
		}
	}
	interactive := interactiveElements[name] && !(name == "input" && attrs["type"] == "hidden")
	if _, ok := attrs["tabindex"]; ok || interactive {
		if a := c.ancestor("a", "button"); a != "" {
			c.problem("<%s> (interactive or focusable) inside <%s>", name, a)
		}
	}
	for _, rule := range []struct{ element, ancestors string }{
		{"form", "form"},
		{"label", "label"},
		{"main", "article aside footer header nav main"},
		{"header", "header footer"},
		{"footer", "header footer"},
	} {
		if name == rule.element {
			if a := c.ancestor(strings.Fields(rule.ancestors)...); a != "" {
				c.problem("<%s> inside <%s>", name, a)
			}
		}
	}
}

// inPhrasing reports whether the open elements allow phrasing content only:
// the nearest ancestor that is not transparent (a) decides.
func (c *htmlChecker) inPhrasing() bool { return c.phrasingAncestor() != "" }

func (c *htmlChecker) phrasingAncestor() string {
	for _, e := range slices.Backward(c.stack) {
		switch {
		case e.name == "a":
			continue
		case phrasingOnly[e.name]:
			return e.name
		default:
			return ""
		}
	}
	return ""
}

// ancestor answers the nearest open element among names, or "".
func (c *htmlChecker) ancestor(names ...string) string {
	for _, e := range slices.Backward(c.stack) {
		if slices.Contains(names, e.name) {
			return e.name
		}
	}
	return ""
}

func (c *htmlChecker) checkDocument() {
	if !c.doctype {
		c.problem("no <!DOCTYPE html>")
	}
	for _, name := range []string{"html", "head", "body", "title", "main"} {
		if n := c.counts[name]; n != 1 {
			c.problem("%d <%s> elements, want 1", n, name)
		}
	}
	if c.counts["title"] == 1 && strings.TrimSpace(c.titleText) == "" {
		c.problem("the <title> is empty")
	}
	if !c.charset {
		c.problem("no <meta charset=\"utf-8\">")
	}
}

// checkReferences checks that the ids that attributes name exist, and are of
// elements that may be named so.
func (c *htmlChecker) checkReferences() {
	labelable := []string{"input", "select", "textarea", "button", "meter", "output", "progress"}
	for _, r := range c.references {
		target, ok := c.ids[r.id]
		switch {
		case !ok:
			c.problem("<%s %s=%q>: no element has that id", r.element, r.attr, r.id)
		case r.attr == "for" && (!slices.Contains(labelable, strings.Fields(target)[0]) || target == "input type=hidden"):
			c.problem("<%s for=%q> names a <%s>, which is not labelable", r.element, r.id, target)
		case r.attr == "list" && target != "datalist":
			c.problem("<%s list=%q> names a <%s>, not a <datalist>", r.element, r.id, target)
		}
	}
}
