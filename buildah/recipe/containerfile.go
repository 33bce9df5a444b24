package recipe

import (
	"fmt"
	"strings"
)

// The checks that begin the RUN lines: a base image without the package
// manager fails with a plain message instead of "apt-get: not found";
// "command -v" works in dash, bash and busybox sh alike.
//
// pip is looked up as "pip" only (no fallback to pip3 or "python3 -m pip"):
// images with Python packages nearly always provide it, and one command keeps
// the layer easy to read; the message says what is missing.
const (
	aptCheck   = `command -v apt-get >/dev/null || { echo "imagehub: the base image has no apt-get, so APT packages cannot be installed" >&2; exit 1; }; `
	condaCheck = `command -v conda >/dev/null || { echo "imagehub: the base image has no conda, so conda packages cannot be installed" >&2; exit 1; }; `
	pipCheck   = `command -v pip >/dev/null || { echo "imagehub: the base image has no pip, so pip packages cannot be installed" >&2; exit 1; }; `
)

// runLine renders one RUN line: its fixed prefix (mounts, check, command),
// every package as one single-quoted argument, and its suffix. Parse admits
// no single quote in a package, so a quoted package is always exactly one
// literal word for the shell.
func runLine(prefix string, pkgs []string, suffix string) string {
	var b strings.Builder
	b.WriteString("RUN ")
	b.WriteString(prefix)
	for _, p := range pkgs {
		b.WriteString(" '")
		b.WriteString(p)
		b.WriteString("'")
	}
	b.WriteString(suffix)
	b.WriteString("\n")
	return b.String()
}

// Containerfile renders the Containerfile of a recipe. It is deterministic
// and has one layer per non-empty list, in the order apt, conda, pip, so that
// a change to the pip list reuses the cached apt and conda layers. Each RUN
// line mounts its package manager's caches and points it at the mirrors of
// s (see setup.go); the cache scope is part of the line, so that buildah's
// layer cache, too, is never shared between scopes.
//
// base is the already-normalised base image reference. user is the base
// image's own configured user: the packages are installed as root, named by
// its uid ("USER 0"), and the last line switches back to that user, or
// writes "USER root" when user is "" (an image without a user runs as
// root). buildah resolves a user name in the image's /etc/passwd at every
// later step, cached or not, each time in a process of its own; uid 0 is
// root in every image and needs no look-up until a RUN step runs.
//
// p must come from Parse, whose grammar guarantees that no package
// holds a single quote. base and user come from elsewhere (an image reference
// and an image configuration); Containerfile panics when either could break
// out of its line (see CheckContainerfileInputs), and so does s (see
// CheckSetup), because writing such a Containerfile would let the text add
// instructions of its own.
func Containerfile(base string, p Packages, user string, s Setup) string {
	if err := CheckContainerfileInputs(base, user); err != nil {
		panic("recipe.Containerfile: " + err.Error())
	}
	if err := CheckSetup(s); err != nil {
		panic("recipe.Containerfile: " + err.Error())
	}
	for _, list := range [][]string{p.Apt, p.Conda, p.Pip} {
		for _, pkg := range list {
			if strings.ContainsAny(pkg, "'\n\r") {
				panic(fmt.Sprintf("recipe.Containerfile: package %q was not checked by Parse", pkg))
			}
		}
	}
	if user == "" {
		user = "root"
	}
	var b strings.Builder
	b.WriteString("FROM " + base + "\n")
	b.WriteString("USER 0\n")
	for _, l := range []struct {
		pkgs []string
		run  func(Setup) (string, string)
	}{{p.Apt, aptRun}, {p.Conda, condaRun}, {p.Pip, pipRun}} {
		if len(l.pkgs) > 0 {
			prefix, suffix := l.run(s)
			b.WriteString(runLine(prefix, l.pkgs, suffix))
		}
	}
	b.WriteString("USER " + user + "\n")
	return b.String()
}

// CheckContainerfileInputs reports whether base and user can be written into
// a Containerfile safely: base must be one word of printable ASCII without
// quotes, "$" (a Containerfile expands variables in FROM and USER) or
// backslashes (the Containerfile escape character), and user must look like
// "name", "uid", "name:group" or "uid:gid". Callers that take the user from
// an image configuration check it first and fail the build with this error.
func CheckContainerfileInputs(base, user string) error {
	if base == "" {
		return fmt.Errorf("empty base image")
	}
	if len(base) > 1024 {
		return fmt.Errorf("base image reference too long")
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("'\"`$\\", c) >= 0 {
			return fmt.Errorf("base image %q: %q is not allowed in an image reference", base, string(c))
		}
	}
	if len(user) > 256 {
		return fmt.Errorf("user too long")
	}
	name, group, hasGroup := strings.Cut(user, ":")
	if user != "" && (!userPart(name) || (hasGroup && !userPart(group))) {
		return fmt.Errorf("base image user %q is not a plain user[:group]", user)
	}
	return nil
}

// userPart reports whether s is a non-empty user or group name or id.
func userPart(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && strings.IndexByte("_.@+-", c) < 0 {
			return false
		}
	}
	return true
}
