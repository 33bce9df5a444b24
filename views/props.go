// Package views renders imagehub's pages with templ: one layout that takes
// the page content, one .templ file per page, and fragments that htmx swaps
// into a page (the images table, the name preview, a check result). Every
// page takes a typed props struct defined here.
package views

import (
	"time"

	"imagehub/store"
)

// Page is what the layout needs from every page.
type Page struct {
	// Title is the page's heading and the window title.
	Title string
	// Nav is the key of the active navigation item (see navItems).
	Nav string
	// User is the signed-in user; nil on the sign-in page.
	User *store.User
	// CSRF is the session's token, put in every form and htmx request.
	CSRF string
	// Flashes are one-time notices, such as "Image saved.".
	Flashes []string
	// StaticVersion is a digest of the static files, added to their URLs so
	// that browsers may cache them for good and still get each new version.
	StaticVersion string
}

// Navigation keys of the pages.
const (
	NavImages   = "images"
	NavGroups   = "groups"
	NavSecrets  = "secrets"
	NavMyImages = "my-images"
	NavUsers    = "users"
	NavTokens   = "tokens"
	NavDisk     = "disk"
	NavSettings = "settings"
	// NavGroupImages is a group admin's page of their group's own images.
	NavGroupImages = "group-images"
)

// LoginProps is the sign-in form.
type LoginProps struct {
	Page     Page
	Username string
	// Next is where to go after signing in.
	Next  string
	Error string
}

// ImagesProps is the images admin page: the search box and the table.
type ImagesProps struct {
	Page  Page
	Table ImagesTableProps
	// Groups are the names of the groups the administrators' owner filter
	// offers.
	Groups []string
}

// ImagesTableProps is the table fragment that live search and the page
// links swap.
type ImagesTableProps struct {
	// Scope is whose images the table lists (and where its links lead).
	Scope Scope
	// Owner filters the administrators' table: "system", a group, or "" for all.
	Owner   string
	Query   string
	Images  []*store.Image
	Total   int
	PageNum int
	PerPage int
	// CSRF is for the delete buttons' no-script fallback form.
	CSRF string
	// Building maps the images with a build queued or running to that
	// build (store.ActiveBuilds); while any is, the table refreshes itself.
	Building map[string]*store.Build
}

// Image form kinds: an image that exists in a registry, or one that
// imagehub builds from a recipe.
const (
	KindExisting = "existing"
	KindBuild    = "build"
)

// ImageFormProps is the add and edit form of an image.
type ImageFormProps struct {
	Page Page
	// Scope is whose image the form adds or edits: a group's own image has
	// no access choice (it is that group's alone).
	Scope Scope
	// Owner is the edited image's owner ("" when adding).
	Owner string
	// Kind is KindExisting or KindBuild.
	Kind string
	// Name is the image's name when editing, "" when adding.
	Name   string
	Values ImageValues
	// Errors holds the reason per field name (displayName, url, …).
	Errors  map[string]string
	Secrets []*store.Secret
	Groups  []*store.Group
	// BaseImages are the URLs of the catalogue's ready images, offered as
	// base images of a custom build.
	BaseImages []string
}

// Editing reports whether the form edits an existing image.
func (p ImageFormProps) Editing() bool { return p.Name != "" }

// ImageValues are the image form's fields as typed, kept when the form comes
// back with errors.
type ImageValues struct {
	DisplayName   string
	Description   string
	Type          string
	URL           string
	UseGPUURL     bool
	URLForGPU     string
	UsePullSecret bool
	PullSecret    string
	Global        bool
	Groups        []string
	// The recipe of a custom image: in the build form the pull secret above
	// is the base image's.
	BaseImage string
	Apt       string
	Conda     string
	Pip       string
	// NoSmokeTest turns the recipe's smoke test off; a new form has it on.
	NoSmokeTest bool
}

// RecipeOf returns the recipe typed into the form.
func (v ImageValues) RecipeOf() store.Recipe {
	r := store.Recipe{BaseImage: v.BaseImage, Apt: v.Apt, Conda: v.Conda, Pip: v.Pip, SmokeTest: store.NewToggle(!v.NoSmokeTest)}
	if v.UsePullSecret {
		r.PullSecret = v.PullSecret
	}
	return r
}

// RecipeValues fills the recipe fields of the form from a recipe.
func RecipeValues(r store.Recipe) ImageValues {
	return ImageValues{
		BaseImage: r.BaseImage, Apt: r.Apt, Conda: r.Conda, Pip: r.Pip, NoSmokeTest: !r.SmokeTest.On(),
		UsePullSecret: r.PullSecret != "", PullSecret: r.PullSecret,
	}
}

// ImageValuesOf fills the form from a stored image.
func ImageValuesOf(img *store.Image) ImageValues {
	return ImageValues{
		DisplayName:   img.DisplayName,
		Description:   img.Description,
		Type:          string(img.Type),
		URL:           img.URL,
		UseGPUURL:     img.UseGPUURL,
		URLForGPU:     img.URLForGPU,
		UsePullSecret: img.PullSecret != "",
		PullSecret:    img.PullSecret,
		Global:        img.Global,
		Groups:        img.Groups,
	}
}

// NamePreviewProps is the generated name shown under the display name as it
// is typed.
type NamePreviewProps struct {
	// Name is the name the image would get; "" when the display name is not valid.
	Name string
	// Taken is set when the display name is used already, so a random suffix
	// will be added.
	Taken bool
	// Reason says why the display name is not valid.
	Reason string
}

// CheckProps is the answer of the "Check" action.
type CheckProps struct {
	// Reference is the normalised reference that was looked up.
	Reference string
	// Error is the reason the check failed: a malformed reference or the
	// registry's own answer.
	Error     string
	Digest    string
	MediaType string
	Platforms []string
	Size      int64
	User      string
}

// ImagePageProps is one image's page.
type ImagePageProps struct {
	Page  Page
	Scope Scope
	Image *store.Image
	// Builds is the build history of a custom image, newest first.
	Builds []*store.Build
	// Active is its build that is queued or running, nil when none is.
	Active *store.Build
	// Compare is the Compare section of a custom image.
	Compare CompareProps
}

// CompareProps is the Compare section of an image's page: two of its builds
// with a package list, and what changed from one to the other.
type CompareProps struct {
	// Builds are the image's builds that have a package list, newest first.
	Builds []*store.Build
	// From and To are the builds chosen (by default the newest two).
	From, To int64
	// Diff is the comparison asked for; nil when none was.
	Diff *store.PackageDiff
	// Error says why the comparison asked for could not be made.
	Error string
}

// PackagesProps is the Packages section of a build's page, and the table
// fragment that its live search and page links swap.
type PackagesProps struct {
	Scope   Scope
	BuildID int64
	// Query and Manager filter the table (store.PackageFilter).
	Query   string
	Manager string
	// Counts counts the packages of each manager in the whole list.
	Counts map[store.PackageManager]int
	// Items is the page shown of the Total packages that match.
	Items   []store.Package
	Total   int
	PageNum int
	PerPage int
}

// ImageGroupsProps is the "Edit Groups" form of an image.
type ImageGroupsProps struct {
	Page     Page
	Image    *store.Image
	Global   bool
	Selected []string
	Groups   []*store.Group
	Errors   map[string]string
}

// SecretsProps is the pull secrets page: the list and the add form.
type SecretsProps struct {
	Page    Page
	Secrets []*store.Secret
	// Form keeps what was typed (never the password) when adding failed.
	Form   SecretValues
	Errors map[string]string
}

// SecretValues are the add-secret form's fields, without the password.
type SecretValues struct {
	Name         string
	RegistryHost string
	Username     string
}

// GroupsProps is the groups page: the list and the add form.
type GroupsProps struct {
	Page   Page
	Groups []*store.Group
	Form   GroupValues
	Errors map[string]string
}

// GroupValues are a group form's fields.
type GroupValues struct {
	Name        string
	DisplayName string
}

// GroupEditProps is a group's page: the rename form and its members.
type GroupEditProps struct {
	Page Page
	// Name is the group's current name (the form's target).
	Name   string
	Form   GroupValues
	Errors map[string]string
	// Members are the group's members with their roles.
	Members []store.Member
	// Users are all users, offered by the add-member form.
	Users []*store.User
	// Member keeps what the add-member form sent when it failed.
	Member MemberValues
	// MemberErrors holds the add-member form's reasons (username, role).
	MemberErrors map[string]string
}

// MemberValues are the add-member form's fields.
type MemberValues struct {
	Username string
	Role     string
}

// SelectionProps is a user's image selection.
type SelectionProps struct {
	Page   Page
	Images []*store.Image
}

// UsersProps is the users admin page: the list and the add form.
type UsersProps struct {
	Page  Page
	Users []*store.User
	// Form keeps what was typed (never the password) when adding failed.
	Form   UserValues
	Errors map[string]string
}

// UserValues are the add-user form's fields, without the password.
type UserValues struct {
	Username string
	Admin    bool
}

// UserPageProps is one user's admin page: reset password, administrator
// rights, groups, delete.
type UserPageProps struct {
	Page Page
	User *store.User
	// Self is set when the administrator looks at their own account, which
	// they may neither delete nor take administrator rights from.
	Self bool
	// Errors holds the reasons of the form that failed (password, admin).
	Errors map[string]string
}

// TokensProps is the API tokens page of the signed-in user.
type TokensProps struct {
	Page   Page
	Tokens []*store.Token
	// All is set for an administrator, who sees (and may revoke) every
	// user's tokens.
	All bool
	// Created is the token just made, and Value its secret, shown once.
	Created *store.Token
	Value   string
	Form    TokenValues
	Errors  map[string]string
	// Now is the time the page is made, to mark the tokens that expired.
	Now time.Time
}

// TokenValues are the new-token form's fields.
type TokenValues struct {
	Name  string
	Scope string
	// Expires is the token's lifetime in days, "" for never.
	Expires string
}

// MaxTokenDays is the longest lifetime, in days, a token made on the form
// may have.
const MaxTokenDays = 3650

// ErrorProps is the page shown when a request fails.
type ErrorProps struct {
	Page    Page
	Status  int
	Message string
}

// BuildPageProps is one build's page: its details, its live log and what
// can be done with it.
type BuildPageProps struct {
	Page  Page
	Scope Scope
	Build *store.Build
	Image *store.Image
	// Packages is the Packages section; nil when the build has no list.
	Packages *PackagesProps
	// Changes is what changed in the packages since the image's previous
	// successful build; nil when there is none to compare with.
	Changes *store.PackageDiff
}

// BuildProgressProps is an active build's progress bar.
type BuildProgressProps struct {
	Scope Scope
	Build *store.Build
}

// RebuildProps is the form that edits a custom image's recipe and starts a
// new build from it.
type RebuildProps struct {
	Page  Page
	Scope Scope
	Image *store.Image
	// From is the build whose recipe filled the form, 0 for the image's own.
	From       int64
	Values     ImageValues
	Errors     map[string]string
	Secrets    []*store.Secret
	BaseImages []string
}

// DiskProps is the disk page: what imagehub keeps on disk, the settings
// that bound it, and the embedded registry's garbage collection.
type DiskProps struct {
	Page Page
	// Report is nil when this imagehub keeps no watch on its disk.
	Report *DiskReport
	// Waiting is what queued builds wait for now ("" when nothing holds them).
	Waiting string
}

// DiskReport is what the disk page shows (disk.Report, for the page).
type DiskReport struct {
	// Bytes on disk of the embedded registry, the layer cache and the logs,
	// and the free space of the data folder's file system.
	Registry, Cache, Logs, Free int64
	CacheImages                 int
	// CacheError says why the layer cache could not be measured.
	CacheError string
	// MeasuredAt is when the figures were measured.
	MeasuredAt time.Time
	// Embedded: builds are pushed to the embedded registry, whose garbage
	// imagehub collects; the registry fields are about it.
	Embedded bool
	// Reclaimable is what a garbage collection would free now, in blobs
	// and bytes; ReclaimableError says why that could not be told.
	ReclaimableBlobs int
	Reclaimable      int64
	ReclaimableError string
	// LastGC is the last garbage collection; nil before the first.
	LastGC *DiskGC
	// The settings that bound the disk.
	KeepBuilds  int
	CacheSize   int64
	MinFreeDisk int64
	GCInterval  time.Duration
}

// DiskGC is one garbage collection of the embedded registry.
type DiskGC struct {
	At    time.Time
	Took  time.Duration
	Blobs int
	Bytes int64
	Error string
}

// SettingsProps is the administrators' Settings page: the package mirrors.
type SettingsProps struct {
	Page Page
	// Form holds the page's own values; an empty field takes the flag's,
	// from Defaults.
	Form, Defaults store.PackageSettings
	// Secrets are offered for the mirrors' credentials.
	Secrets []*store.Secret
	Errors  map[string]string
}
