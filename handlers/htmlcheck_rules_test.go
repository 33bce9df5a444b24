package handlers

import "strings"

// The HTML standard's facts that htmlProblems checks against (WHATWG HTML,
// "Elements", "Content models" and the attribute index), for the elements a
// server-rendered page uses. An element or attribute missing here is
// reported: add it when a page needs it and the standard allows it.

// set is a set of names written as one space-separated string.
func set(names string) map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Fields(names) {
		m[n] = true
	}
	return m
}

var (
	htmlElements = set(`html head body title meta link script style base noscript template
		main header footer nav section article aside h1 h2 h3 h4 h5 h6 hgroup address
		p div span a ul ol li dl dt dd menu blockquote figure figcaption hr pre
		table caption colgroup col thead tbody tfoot tr th td
		form fieldset legend label input button select option optgroup datalist textarea output progress meter
		img picture source svg code kbd samp var strong em b i u s small mark abbr time data sub sup br wbr
		q cite dfn ins del details summary dialog iframe embed object video audio track canvas map area`)

	// svgElements and svgAttributes are what the icons use, and their kin.
	svgElements   = set(`svg g path circle ellipse rect line polyline polygon title desc defs symbol use text tspan`)
	svgAttributes = set(`viewbox width height fill stroke stroke-width stroke-linejoin stroke-linecap stroke-dasharray
		d cx cy r rx ry x y x1 y1 x2 y2 points transform opacity fill-rule clip-rule class id role
		aria-hidden aria-label focusable xmlns href`)

	voidElements = set(`area base br col embed hr img input link meta source track wbr`)

	globalAttributes = set(`accesskey autocapitalize autocorrect autofocus class contenteditable dir draggable
		enterkeyhint hidden id inert inputmode is itemid itemprop itemref itemscope itemtype lang nonce
		popover role slot spellcheck style tabindex title translate writingsuggestions`)

	booleanAttributes = set(`allowfullscreen async autofocus autoplay checked controls default defer disabled
		formnovalidate inert ismap itemscope loop multiple muted nomodule novalidate open playsinline
		readonly required reversed selected`)

	numericAttributes = set(`colspan rowspan rows cols maxlength minlength size tabindex span start`)

	// flowOnly elements are flow content but not phrasing content.
	flowOnly = set(`address article aside blockquote details dialog div dl fieldset figure footer form
		h1 h2 h3 h4 h5 h6 header hgroup hr main menu nav ol p pre section table ul`)

	// phrasingOnly elements hold phrasing content only.
	phrasingOnly = set(`p span label button h1 h2 h3 h4 h5 h6 pre code kbd samp var strong em b i u s small
		mark abbr time data sub sup q cite dfn legend summary output progress meter`)

	// interactiveElements may not be inside a or button.
	interactiveElements = set(`a button details embed iframe label select textarea input`)

	// noTextIn elements hold elements only: text there is dropped or moved.
	noTextIn = set(`html head table thead tbody tfoot tr colgroup ul ol dl select optgroup`)

	scriptSupporting = set(`script template`)
)

// elementAttributes are the attributes of each element beyond the global
// ones, data-* and aria-*.
var elementAttributes = map[string][]string{
	"a":        strings.Fields("href target download rel hreflang type referrerpolicy ping"),
	"button":   strings.Fields("type name value disabled form formaction formmethod formnovalidate formtarget formenctype popovertarget popovertargetaction"),
	"col":      {"span"},
	"colgroup": {"span"},
	"data":     {"value"},
	"datalist": nil,
	"details":  {"open", "name"},
	"dialog":   {"open"},
	"fieldset": {"disabled", "form", "name"},
	"form":     strings.Fields("action method enctype novalidate autocomplete name target accept-charset rel"),
	"html":     {"xmlns"},
	"img":      strings.Fields("src alt width height srcset sizes loading decoding crossorigin referrerpolicy usemap ismap fetchpriority"),
	"input":    strings.Fields("type name value checked disabled readonly required placeholder maxlength minlength min max step pattern size list autocomplete multiple accept form src alt width height dirname"),
	"label":    {"for"},
	"li":       {"value"},
	"link":     strings.Fields("rel href type media sizes crossorigin integrity as referrerpolicy hreflang"),
	"meta":     strings.Fields("name content charset http-equiv media"),
	"meter":    strings.Fields("value min max low high optimum"),
	"ol":       {"reversed", "start", "type"},
	"optgroup": {"label", "disabled"},
	"option":   {"value", "selected", "disabled", "label"},
	"output":   {"for", "form", "name"},
	"progress": {"value", "max"},
	"script":   strings.Fields("src type defer async crossorigin integrity nomodule referrerpolicy"),
	"select":   strings.Fields("name disabled required multiple size form autocomplete"),
	"td":       {"colspan", "rowspan", "headers"},
	"textarea": strings.Fields("name rows cols maxlength minlength placeholder readonly required disabled wrap form autocomplete dirname"),
	"th":       {"colspan", "rowspan", "headers", "scope", "abbr"},
	"time":     {"datetime"},
}

// enumeratedValues are the allowed values of an attribute, keyed by
// "element attribute" or, for any element, by the attribute's name.
var enumeratedValues = map[string][]string{
	"input type":     strings.Fields("hidden text search tel url email password date month week time datetime-local number range color checkbox radio file submit image reset button"),
	"button type":    {"submit", "reset", "button"},
	"form method":    {"get", "post", "dialog"},
	"th scope":       {"row", "col", "rowgroup", "colgroup"},
	"aria-live":      {"off", "polite", "assertive"},
	"aria-hidden":    {"true", "false"},
	"aria-current":   strings.Fields("page step location date time true false"),
	"spellcheck":     {"", "true", "false"},
	"autocapitalize": strings.Fields("on off none sentences words characters"),
}

// allowedParents are the only parents of some elements.
var allowedParents = map[string][]string{
	"head":     {"html"},
	"body":     {"html"},
	"title":    {"head"},
	"meta":     {"head"},
	"link":     {"head"},
	"base":     {"head"},
	"li":       {"ul", "ol", "menu"},
	"dt":       {"dl", "div"},
	"dd":       {"dl", "div"},
	"caption":  {"table"},
	"colgroup": {"table"},
	"thead":    {"table"},
	"tbody":    {"table"},
	"tfoot":    {"table"},
	"tr":       {"table", "thead", "tbody", "tfoot"},
	"td":       {"tr"},
	"th":       {"tr"},
	"option":   {"select", "datalist", "optgroup"},
	"optgroup": {"select"},
	"legend":   {"fieldset"},
	"summary":  {"details"},
}

// allowedChildren are the only children of some elements (besides script
// and template).
var allowedChildren = map[string][]string{
	"html":     {"head", "body"},
	"head":     strings.Fields("meta link title script style base noscript template"),
	"ul":       {"li"},
	"ol":       {"li"},
	"menu":     {"li"},
	"dl":       {"dt", "dd", "div"},
	"table":    strings.Fields("caption colgroup thead tbody tfoot tr"),
	"thead":    {"tr"},
	"tbody":    {"tr"},
	"tfoot":    {"tr"},
	"tr":       {"td", "th"},
	"colgroup": {"col"},
	"select":   {"option", "optgroup", "hr"},
	"optgroup": {"option"},
	"datalist": {"option"},
}
