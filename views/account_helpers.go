package views

import (
	"net/url"
	"strconv"
	"strings"

	"imagehub/store"
)

// passwordRule is the rule of a password as the store checks it, shown
// under the fields that set one.
var passwordRule = "At least " + strconv.Itoa(store.MinPasswordLen) + " characters, at most " +
	strconv.Itoa(store.MaxPasswordBytes) + " bytes (bcrypt reads no further)."

// UserPath is the path of a user's admin page, plus an optional sub-path.
func UserPath(username string, rest ...string) string {
	return "/admin/users/" + url.PathEscape(username) + strings.Join(rest, "")
}

// memberPath is the path of one membership of a group, plus an optional
// sub-path.
func memberPath(group, username string, rest ...string) string {
	return GroupPath(group, "/members/"+url.PathEscape(username)) + strings.Join(rest, "")
}

// tokenPath is the path of an API token, plus an optional sub-path.
func tokenPath(id int64, rest ...string) string {
	return "/account/tokens/" + strconv.FormatInt(id, 10) + strings.Join(rest, "")
}

// roleLabel says what a group role may do, in a word or two.
func roleLabel(r store.Role) string {
	if r == store.RoleAdmin {
		return "Group admin"
	}
	return "Member"
}

// scopeLabel says what a token of that scope may do.
func scopeLabel(s store.TokenScope) string {
	if s == store.ScopeAdmin {
		return "Read and write"
	}
	return "Read only"
}

// isMember reports whether username is among members.
func isMember(members []store.Member, username string) bool {
	for _, m := range members {
		if m.Username == username {
			return true
		}
	}
	return false
}

// nonMembers lists the users who are not members yet, for the add-member
// picker.
func nonMembers(users []*store.User, members []store.Member) []*store.User {
	var out []*store.User
	for _, u := range users {
		if !isMember(members, u.Username) {
			out = append(out, u)
		}
	}
	return out
}

// checkedIf is the value of a radio's "checked" state: v is the chosen one,
// or def when nothing was chosen.
func checkedIf(chosen, v, def string) bool {
	if chosen == "" {
		return v == def
	}
	return chosen == v
}

// ownGroup is the group whose own image the form adds or edits, "" for a
// System image.
func ownGroup(p ImageFormProps) string {
	if p.Owner != "" && p.Owner != store.OwnerSystem {
		return p.Owner
	}
	return p.Scope.Group
}
