package views

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"
)

// Scope is whose images a page manages: the administrators' catalogue under
// /admin (every image, System and groups' own) or one group's own images,
// managed by that group's admins under /groups/{group}. The image pages, the
// build pages and their forms are the same in both; only their addresses and
// what they offer (global access, other groups) differ. The zero Scope is
// the administrators'.
type Scope struct {
	// Group is the group whose own images are managed, "" for the
	// administrators' catalogue.
	Group string
}

// GroupScope is the scope of one group's own images.
func GroupScope(group string) Scope { return Scope{Group: group} }

// IsGroup reports whether the scope is one group's own images.
func (s Scope) IsGroup() bool { return s.Group != "" }

// root is where the scope's pages live.
func (s Scope) root() string {
	if s.IsGroup() {
		return "/groups/" + url.PathEscape(s.Group)
	}
	return "/admin"
}

// ImagesPath is the path of the scope's images table.
func (s Scope) ImagesPath() string { return s.root() + "/images" }

// ImagePath is the path of an image's page in the scope, plus an optional
// sub-path.
func (s Scope) ImagePath(name string, rest ...string) string {
	return s.ImagesPath() + "/" + url.PathEscape(name) + strings.Join(rest, "")
}

// BuildPath is the path of a build's page in the scope, plus an optional
// sub-path.
func (s Scope) BuildPath(id int64, rest ...string) string {
	return s.root() + "/builds/" + strconv.FormatInt(id, 10) + strings.Join(rest, "")
}

// Nav is the navigation key of the scope's pages.
func (s Scope) Nav() string {
	if s.IsGroup() {
		return NavGroupImages + ":" + s.Group
	}
	return NavImages
}

// ImagesTitle is the heading of the scope's images table.
func (s Scope) ImagesTitle() string {
	if s.IsGroup() {
		return "Images of " + s.Group
	}
	return "Images"
}

func (s Scope) imageURL(name string, rest ...string) templ.SafeURL {
	return templ.SafeURL(s.ImagePath(name, rest...))
}

func (s Scope) buildURL(id int64, rest ...string) templ.SafeURL {
	return templ.SafeURL(s.BuildPath(id, rest...))
}

// toolPath is the path of a helper endpoint of the image form (name-preview,
// check), under "-/" where no image name can start.
func (s Scope) toolPath(tool string) string { return s.ImagesPath() + "/-/" + tool }

// pageURL is the images table's URL for a search, an owner filter
// (administrators only) and a page. The parameters come in the order of
// url.Values.Encode, by name; the owner filter makes one for each group.
func (s Scope) pageURL(q, owner string, page int) string {
	var b strings.Builder
	b.WriteString(s.ImagesPath())
	sep := byte('?')
	param := func(name, value string) {
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(value))
	}
	if owner != "" && !s.IsGroup() {
		param("owner", owner)
	}
	if page > 1 {
		param("page", strconv.Itoa(page))
	}
	if q != "" {
		param("q", q)
	}
	return b.String()
}
