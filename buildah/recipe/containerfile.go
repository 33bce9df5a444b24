package recipe

import (
	"fmt"
	"strings"
)

// The fixed text of the RUN lines. Each list becomes one RUN line: its check,
// its prefix, the packages (each one single-quoted argument) and its suffix.
// The check makes a base image without the package manager fail with a plain
// message instead of "apt-get: not found"; "command -v" works in dash, bash
// and busybox sh alike.
//
// pip is looked up as "pip" only (no fallback to pip3 or "python3 -m pip"):
// images with Python packages nearly always provide it, and one command keeps
// the layer easy to read; the message says what is missing.
// PIP_BREAK_SYSTEM_PACKAGES=1 lets pip install into a distribution's Python
// (PEP 668 "externally-managed-environment", e.g. Debian 12), which is what a
// recipe asks for inside an image; pip versions that predate the setting
// ignore it.
const (
	aptRunPrefix = `command -v apt-get >/dev/null || { echo "imagehub: the base image has no apt-get, so APT packages cannot be installed" >&2; exit 1; }; ` +
		`apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends`
	aptRunSuffix = ` && apt-get clean && rm -rf /var/lib/apt/lists/*`

	condaRunPrefix = `command -v conda >/dev/null || { echo "imagehub: the base image has no conda, so conda packages cannot be installed" >&2; exit 1; }; ` +
		`conda install --quiet --yes`
	condaRunSuffix = ` && conda clean --all -f -y`

	pipRunPrefix = `command -v pip >/dev/null || { echo "imagehub: the base image has no pip, so pip packages cannot be installed" >&2; exit 1; }; ` +
		`PIP_BREAK_SYSTEM_PACKAGES=1 pip install --no-cache-dir`
	pipRunSuffix = ``
)

// runLine renders one RUN line with every package as one single-quoted
// argument. Parse admits no single quote in a package, so a quoted
// package is always exactly one literal word for the shell.
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
// a change to the pip list reuses the cached apt and conda layers.
//
// base is the already-normalised base image reference. user is the base
// image's own configured user: the packages are installed as root and the
// last line switches back to that user, or writes "USER root" when user is
// "" (an image without a user runs as root).
//
// p must come from Parse, whose grammar guarantees that no package
// holds a single quote. base and user come from elsewhere (an image reference
// and an image configuration); Containerfile panics when either could break
// out of its line (see CheckContainerfileInputs), because writing such a
// Containerfile would let the text add instructions of its own.
func Containerfile(base string, p Packages, user string) string {
	if err := CheckContainerfileInputs(base, user); err != nil {
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
	b.WriteString("USER root\n")
	if len(p.Apt) > 0 {
		b.WriteString(runLine(aptRunPrefix, p.Apt, aptRunSuffix))
	}
	if len(p.Conda) > 0 {
		b.WriteString(runLine(condaRunPrefix, p.Conda, condaRunSuffix))
	}
	if len(p.Pip) > 0 {
		b.WriteString(runLine(pipRunPrefix, p.Pip, pipRunSuffix))
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
