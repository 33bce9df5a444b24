package views

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"imagehub/store"
)

// navItem is one link of the top navigation.
type navItem struct {
	Key, Label, Href string
}

// navItems returns the navigation a user sees: the admin pages for an
// administrator, the images of each group they administer for a group
// admin, and everyone's own pages.
func navItems(u *store.User) []navItem {
	var items []navItem
	if u != nil && u.Admin {
		items = append(items,
			navItem{NavImages, "Images", "/admin/images"},
			navItem{NavGroups, "Groups", "/admin/groups"},
			navItem{NavSecrets, "Secrets", "/admin/secrets"},
			navItem{NavUsers, "Users", "/admin/users"},
			navItem{NavDisk, "Disk", "/admin/disk"},
			navItem{NavSettings, "Settings", "/admin/settings"},
		)
	}
	if u != nil && !u.Admin {
		// A group admin manages their groups' own images (administrators
		// see them all under Images).
		for _, g := range u.AdministeredGroups() {
			sc := GroupScope(g)
			items = append(items, navItem{sc.Nav(), sc.ImagesTitle(), sc.ImagesPath()})
		}
	}
	items = append(items, navItem{NavMyImages, "My images", "/images"})
	if u != nil {
		items = append(items, navItem{NavTokens, "API tokens", "/account/tokens"})
	}
	return items
}

// htmxConfig configures htmx through its meta tag: no inline indicator style
// (the content security policy forbids inline styles), 422 answers are
// swapped like successes (they carry a form or fragment with the errors), and
// other errors are shown in the page's message area.
const htmxConfig = `{"includeIndicatorStyles":false,"responseHandling":[` +
	`{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"422","swap":true},` +
	`{"code":"[45]..","swap":true,"error":true,"target":"#flash","swapOverride":"innerHTML"}]}`

// csrfHeaders is the data-hx-headers value that makes every htmx request carry
// the CSRF token.
func csrfHeaders(token string) string {
	b, _ := json.Marshal(map[string]string{"X-CSRF-Token": token})
	return string(b)
}

// jsonAttr encodes v for a data-hx-vals attribute.
func jsonAttr(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// GroupPath is the path of a group, plus an optional sub-path.
func GroupPath(name string, rest ...string) string {
	return "/admin/groups/" + url.PathEscape(name) + strings.Join(rest, "")
}

// secretPath is the path of a secret, plus an optional sub-path.
func secretPath(name string, rest ...string) string {
	return "/admin/secrets/" + url.PathEscape(name) + strings.Join(rest, "")
}

// pageCount is how many pages of perPage hold total rows (at least one).
func pageCount(total, perPage int) int {
	if perPage <= 0 || total <= perPage {
		return 1
	}
	return (total + perPage - 1) / perPage
}

// pageNumbers lists the pages to link: all when few, else the first, the
// last and those around the current one, with 0 standing for a gap.
func pageNumbers(current, count int) []int {
	var out []int
	for p := 1; p <= count; p++ {
		if count <= 9 || p == 1 || p == count || (p >= current-2 && p <= current+2) {
			out = append(out, p)
		} else if len(out) > 0 && out[len(out)-1] != 0 {
			out = append(out, 0)
		}
	}
	return out
}

// showing is the "21–40 of 45" line under the table.
func showing(p ImagesTableProps) string {
	if p.Total == 0 {
		return "No images"
	}
	first := (p.PageNum-1)*p.PerPage + 1
	last := first + len(p.Images) - 1
	return fmt.Sprintf("%d–%d of %d", first, last, p.Total)
}

// AccessText says who may use an image: "Global", its groups, or "No group
// yet". The images table, the image page and the notice after Edit Groups
// say it alike.
func AccessText(img *store.Image) string {
	switch {
	case img.Global:
		return "Global"
	case len(img.Groups) == 0:
		return "No group yet"
	}
	return strings.Join(img.Groups, ", ")
}

// ownerChoice is one choice of the owner filter: the owner it filters by
// ("" for every image) and its label.
type ownerChoice struct{ owner, label string }

// ownerChoices are the owner filter's choices: every image, the System
// images, and the own images of each of the groups.
func ownerChoices(groups []string) []ownerChoice {
	out := make([]ownerChoice, 0, len(groups)+2)
	out = append(out, ownerChoice{"", "All"}, ownerChoice{store.OwnerSystem, "System"})
	for _, g := range groups {
		out = append(out, ownerChoice{g, "Group " + g})
	}
	return out
}

// typeLabel explains an image type in a few words.
func typeLabel(t string) string {
	switch store.ImageType(t) {
	case store.TypeCPU:
		return "CPU"
	case store.TypeGPU:
		return "GPU"
	case store.TypeUniversal:
		return "Universal"
	}
	return t
}

// humanBytes writes a size as people read it (1.5 MB).
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// statusText is the heading of an error page.
func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// has reports whether xs contains x (a checked group box).
func has(xs []string, x string) bool { return slices.Contains(xs, x) }

// groupLabel shows a group's display name when it has one.
func groupLabel(g *store.Group) string {
	if g.DisplayName != "" && g.DisplayName != g.Name {
		return g.DisplayName + " (" + g.Name + ")"
	}
	return g.Name
}

// timeText formats a stored time for a page.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// timePtrText formats an optional time.
func timePtrText(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return timeText(*t)
}

// imageFormAction is where the image form posts: the collection when adding,
// the image when editing.
func imageFormAction(p ImageFormProps) templ.SafeURL {
	if p.Editing() {
		return p.Scope.imageURL(p.Name)
	}
	return templ.SafeURL(p.Scope.ImagesPath())
}

// secretListed reports whether a secret of that name is among secrets.
func secretListed(secrets []*store.Secret, name string) bool {
	for _, s := range secrets {
		if s.Name == name {
			return true
		}
	}
	return false
}

// unknownGroups returns the selected names that are not existing groups, so
// that a form coming back with "unknown group" still shows what was sent.
func unknownGroups(selected []string, groups []*store.Group) []string {
	var out []string
	for _, name := range selected {
		known := false
		for _, g := range groups {
			known = known || g.Name == name
		}
		if !known && name != "" {
			out = append(out, name)
		}
	}
	return out
}

// orDash shows "—" for an empty value.
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// joinOrDash lists values, or "—" when there are none.
func joinOrDash(xs []string) string { return orDash(strings.Join(xs, ", ")) }

// int64Text formats an id.
func int64Text(n int64) string { return strconv.FormatInt(n, 10) }

// checkVals are the fields the image page's Check button sends.
func checkVals(img *store.Image) map[string]string {
	v := map[string]string{"which": "url", "url": img.URL}
	if img.PullSecret != "" {
		v["usePullSecret"], v["pullSecret"] = "on", img.PullSecret
	}
	return v
}

// staticURL is the address of an embedded static file, with the version
// that lets browsers cache it for good.
func staticURL(p Page, name string) string {
	u := "/static/" + name
	if p.StaticVersion != "" {
		u += "?v=" + p.StaticVersion
	}
	return u
}

// namePreviewTrigger is when the generated name is asked for: as the display
// name is typed and, when the form comes back, at once, unless the display
// name has an error already shown under it.
func namePreviewTrigger(errs map[string]string) string {
	if errs["displayName"] != "" {
		return "input changed delay:200ms"
	}
	return "input changed delay:200ms, load"
}

// statusLabel is how a build state reads on a page.
func statusLabel(s store.BuildStatus) string {
	switch s {
	case store.BuildQueued:
		return "Queued"
	case store.BuildRunning:
		return "Building"
	case store.BuildPushing:
		return "Pushing"
	case store.BuildSucceeded:
		return "Succeeded"
	case store.BuildFailed:
		return "Failed"
	case store.BuildCancelled:
		return "Cancelled"
	case store.BuildInterrupted:
		return "Interrupted"
	}
	return string(s)
}

// canChooseSecret tells whether the signed-in user may pick a pull secret:
// only administrators, whose registry credentials the secrets hold.
func canChooseSecret(p Page) bool { return p.User != nil && p.User.Admin }

// limitText says the layer cache's bound.
func limitText(n int64) string {
	if n <= 0 {
		return "no limit"
	}
	return "limit " + store.FormatSize(n)
}

// keepText says how many builds of each image keep their logs.
func keepText(n int) string {
	if n <= 0 {
		return "all builds"
	}
	if n == 1 {
		return "build"
	}
	return strconv.Itoa(n) + " builds"
}

// defaultHelp is a settings field's help, saying what the flag gives when
// the field is left empty.
func defaultHelp(help, flag, def string) string {
	if def == "" {
		return help + " Empty: none (" + flag + " is not set)."
	}
	return help + " Empty: " + def + " (" + flag + ")."
}

// flagSecretLabel is the choice of no secret on the Settings page.
func flagSecretLabel(def string) string {
	if def == "" {
		return "None"
	}
	return "The flag's: " + def
}

// intervalText says a schedule's interval in the largest whole unit:
// "24 hours", "90 minutes", "45s".
func intervalText(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	}
	return d.String()
}

// plural is "1 hour" or "n hours".
func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// stepText says the step of the Containerfile that a build runs.
func stepText(p *store.BuildProgress) string {
	return "Step " + strconv.Itoa(p.Step) + " of " + strconv.Itoa(p.Steps)
}

// etaText says how long a build should still take, by the image's earlier
// successful builds (store.BuildProgress.ETASeconds).
func etaText(p *store.BuildProgress) string {
	switch n := p.ETASeconds; {
	case n == nil:
		return "No estimate of the time left: no earlier build of this image ran these steps."
	case *n == 0:
		return "Should end any moment, by the earlier builds."
	case *n < 90:
		return "About " + strconv.Itoa(*n) + " s left."
	default:
		return "About " + strconv.Itoa((*n+30)/60) + " min left."
	}
}

// buildingText is the images table's mark of an image's active build: the
// step it runs, once it runs one.
func buildingText(b *store.Build) string {
	if p := b.Progress; p != nil {
		return "building " + strconv.Itoa(p.Step) + "/" + strconv.Itoa(p.Steps)
	}
	return "building…"
}

// onOff says whether a setting is on.
func onOff(on bool) string {
	if on {
		return "On"
	}
	return "Off"
}
