package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// TestPagesHTMLValid reads every page of the web interface as the server
// sends it (everyPage: the pages the browser test visits, and each form sent
// back with its errors), and the fragments htmx swaps in, and checks their
// HTML with htmlProblems.
func TestPagesHTMLValid(t *testing.T) {
	env := newTestEnv(t)
	visits := everyPage(t, env)
	clients := map[string]*client{"": env.anonymous()}
	for _, v := range visits {
		c := clients[v.As]
		if c == nil {
			c = env.signIn(v.As)
			clients[v.As] = c
		}
		res := c.get(v.Path)
		if v.Submit != "" {
			res = submitForm(t, c, c.readPage(res), v)
		}
		body := readAll(t, res.Body)
		if res.StatusCode >= 300 && res.StatusCode < 400 {
			t.Fatalf("%s: redirected to %s", v.Name, res.Header.Get("Location"))
		}
		if v.Shows != "" && parseHTML(t, body).Find(v.Shows).Length() == 0 {
			t.Errorf("%s: status %d, without %s: not the page meant", v.Name, res.StatusCode, v.Shows)
		}
		for _, p := range htmlProblems(body, "") {
			t.Errorf("%s (%s): %s", v.Name, v.Path, p)
		}
	}

	admin := clients["admin"]
	admin.getPage("/admin/images")
	fragments := []struct {
		name string
		res  *http.Response
	}{
		{"images table, searched", admin.htmx(http.MethodGet, "/admin/images?q=python&page=2", nil)},
		{"name preview", admin.htmx(http.MethodGet, "/admin/images/-/name-preview?displayName=jupyter-base", nil)},
		{"name preview, refused", admin.htmx(http.MethodGet, "/admin/images/-/name-preview?displayName=Bad+Name", nil)},
		{"check", admin.htmx(http.MethodPost, "/admin/images/-/check", url.Values{"which": {"url"}, "url": {"python:3.12"}})},
		{"check, failed", admin.htmx(http.MethodPost, "/admin/images/-/check", url.Values{"which": {"url"}, "url": {"host.invalid/x"}})},
		{"error", admin.htmx(http.MethodDelete, "/admin/images/no-such-image", nil)},
	}
	for _, f := range fragments {
		body := readAll(t, f.res.Body)
		if strings.TrimSpace(body) == "" {
			t.Errorf("%s: empty answer (status %d)", f.name, f.res.StatusCode)
		}
		for _, p := range htmlProblems(body, "div") {
			t.Errorf("fragment %s: %s", f.name, p)
		}
	}
}

// submitForm sends the form v.Submit of doc as a browser would (its hidden
// fields, its checked boxes, its selected options, v.Fill's values by id),
// follows a redirect, and answers the page it ends on.
func submitForm(t *testing.T, c *client, doc *goquery.Document, v pageVisit) *http.Response {
	t.Helper()
	form := doc.Find(v.Submit)
	if form.Length() != 1 {
		t.Fatalf("%s: no form %s on %s", v.Name, v.Submit, v.Path)
	}
	values := url.Values{}
	form.Find("input[name], textarea[name], select[name]").Each(func(_ int, s *goquery.Selection) {
		name, _ := s.Attr("name")
		if _, disabled := s.Attr("disabled"); disabled {
			return
		}
		value, _ := s.Attr("value")
		switch {
		case goquery.NodeName(s) == "textarea":
			value = s.Text()
		case goquery.NodeName(s) == "select":
			opt := s.Find("option[selected]").First()
			if opt.Length() == 0 {
				opt = s.Find("option").First()
			}
			value = opt.AttrOr("value", opt.Text())
		case s.Is("[type=checkbox], [type=radio]"):
			if _, checked := s.Attr("checked"); !checked {
				return
			}
			value = s.AttrOr("value", "on")
		}
		if fill, ok := v.Fill[s.AttrOr("id", "")]; ok {
			value = fill
		}
		values.Add(name, value)
	})
	res := c.postForm(form.AttrOr("action", v.Path), values)
	if res.StatusCode == http.StatusSeeOther {
		res = c.get(res.Header.Get("Location"))
	}
	return res
}

// TestHTMLCheckerFindsFaults shows that htmlProblems finds each fault it
// looks for, and nothing in a page without any.
func TestHTMLCheckerFindsFaults(t *testing.T) {
	page := func(body string) string {
		return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>t</title></head><body><main>` +
			body + `</main></body></html>`
	}
	if p := htmlProblems(page(`<p>A <a href="/x">link</a> &amp; <code>x</code>.</p><label for="n">N</label><input id="n" name="n" required>`+
		`<svg viewBox="0 0 1 1" aria-hidden="true"><path d="M0 0"/></svg><dl><div><dt>a</dt><dd>b</dd></div></dl>`), ""); len(p) != 0 {
		t.Errorf("a valid page: %q", p)
	}
	for _, tc := range []struct{ html, want string }{
		{`<p>x</p>`, "no <!DOCTYPE html>"},
		{`<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body><main></main></body></html>`, "<html> without lang"},
		{`<!DOCTYPE html><html lang="en"><head><title> </title></head><body><main></main></body></html>`, "the <title> is empty"},
		{page(`<div><span></div></span>`), "</div> comes before </span>"},
		{page(`<div>`), "</main> comes before </div>"},
		{strings.TrimSuffix(page(`<div>`), "</main></body></html>"), "<div> is never closed"},
		{page(`<a href="/a" title=x HREF='/b'>x</a>`), "<a href>: the attribute is there twice"},
		{page(`</p>`), "</p> closes nothing open"},
		{page(`<br></br>`), "a void element has no end tag"},
		{page(`<div/>`), "only void and SVG elements may end with />"},
		{page(`<blink>x</blink>`), "<blink> is not an HTML element"},
		{page(`<p>&nbspx; &bogus;</p>`), "unknown character reference &bogus;"},
		{page(`<div value="1"></div>`), "the attribute is not allowed on <div>"},
		{page(`<input hx-get="/x">`), "<input hx-get>: the attribute is not allowed"},
		{page(`<button onclick="x()">x</button>`), "no inline event handlers"},
		{page(`<input checked="no">`), "a boolean attribute has no value"},
		{page(`<input type="txt">`), `<input type="txt">: allowed values`},
		{page(`<a href="/" aria-current="">x</a>`), `aria-current=""`},
		{page(`<textarea rows="many"></textarea>`), "not an integer"},
		{page(`<span id="a"></span><span id="a"></span>`), `id "a" is used twice`},
		{page(`<span id="a b"></span>`), "has no spaces"},
		{page(`<label for="missing">x</label>`), `<label for="missing">: no element has that id`},
		{page(`<label for="s">x</label><span id="s"></span>`), "which is not labelable"},
		{page(`<input list="s"><span id="s"></span>`), "not a <datalist>"},
		{page(`<p aria-describedby="nope">x</p>`), "no element has that id"},
		{page(`<p><div>x</div></p>`), "<div> inside <p>"},
		{page(`<p><a href="/"><ul><li>x</li></ul></a></p>`), "<ul> inside <p>"},
		{page(`<label>x<div>y</div></label>`), "<div> inside <label>"},
		{page(`<a href="/"><button>x</button></a>`), "<button> (interactive or focusable) inside <a>"},
		{page(`<button><span tabindex="0">x</span></button>`), "inside <button>"},
		{page(`<form><form></form></form>`), "<form> inside <form>"},
		{page(`<label>a<label>b</label></label>`), "<label> inside <label>"},
		{page(`<nav><main></main></nav>`), "<main> inside <nav>"},
		{page(`<header><header></header></header>`), "<header> inside <header>"},
		{page(`<ul><div>x</div></ul>`), "<div> in <ul>: only li go there"},
		{page(`<ul>text</ul>`), `text "text" directly in <ul>`},
		{page(`<div><li>x</li></div>`), "<li> in <div>: it belongs in ul, ol, menu"},
		{page(`<table><td>x</td></table>`), "<td> in <table>"},
		{page(`<dl><div><p>x</p></div></dl>`), "<p> in a <div> of a <dl>"},
		{page(`<div><dt>x</dt></div>`), "<dt> in a <div> that is not in a <dl>"},
		{page(`<img src="/x.png">`), "<img> without alt"},
		{page(`<svg><blink/></svg>`), "not an SVG element"},
		{page(`<svg onload="x()"></svg>`), "not an SVG attribute"},
		{page(`</main><main>`), "2 <main> elements"},
	} {
		found := false
		for _, p := range htmlProblems(tc.html, "") {
			found = found || strings.Contains(p, tc.want)
		}
		if !found {
			t.Errorf("%s: found %q, want %q", tc.html, htmlProblems(tc.html, ""), tc.want)
		}
	}
	if p := htmlProblems(`<tr><td>x</td></tr>`, "tbody"); len(p) != 0 {
		t.Errorf("a row in its tbody: %q", p)
	}
	if p := htmlProblems(`<div><p>x</div>`, "div"); len(p) == 0 {
		t.Error("a fragment with an element left open: no problem found")
	}
}
