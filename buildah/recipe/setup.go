package recipe

import (
	"fmt"
	"slices"
	"strings"
)

// Setup is what a recipe's Containerfile takes from the installation rather
// than from the recipe: which package caches its RUN steps share, and the
// package mirrors they fetch from. Credentials are never part of it: the
// worker hands them to RUN steps as build secrets (files that buildah mounts
// under /run/secrets for the one step and that no layer keeps), and Setup
// only says which of those files exist.
type Setup struct {
	// CacheScope names the package caches of the build (see CacheScope).
	CacheScope string
	Mirrors    Mirrors
}

// Mirrors are the package mirrors RUN steps use instead of the sources the
// base image names. Every URL is http(s) without credentials, query or
// fragment, and every value a SafeWord (CheckSetup).
type Mirrors struct {
	// PipIndexURL replaces pip's index (PyPI); PipExtraIndexURL adds one.
	PipIndexURL, PipExtraIndexURL string
	// PipNetrc: the build secret SecretPipNetrc holds the credentials of
	// the pip hosts, as a netrc file.
	PipNetrc bool
	// CondaChannels, when set, are the only channels conda installs from.
	CondaChannels []string
	// Condarc: the build secret SecretCondarc is a condarc holding the
	// channel alias, with its credentials (conda takes them in URLs only).
	Condarc bool
	// AptMirror replaces the scheme and host of every http(s) source that
	// the base image's sources.list and sources.list.d name, keeping the
	// path: with http://mirror.example/apt, http://deb.debian.org/debian
	// becomes http://mirror.example/apt/debian.
	AptMirror string
	// AptAuth: the build secret SecretAptAuth holds the APT mirror's
	// credentials, as an apt_auth.conf file.
	AptAuth bool
}

// The ids of the build secrets a worker provides to RUN steps; each is
// mounted at /run/secrets/<id>.
const (
	SecretPipNetrc = "imagehub-pip-netrc"
	SecretCondarc  = "imagehub-condarc"
	SecretAptAuth  = "imagehub-apt-auth"
)

// Where RUN steps see the package caches and the rewritten APT sources.
// The caches are cache mounts, the sources a tmpfs: none of them is ever in
// a layer. APT's archives go to a folder of their own inside its cache mount
// rather than to /var/cache/apt/archives, which the docker-clean hook of
// Debian's and Ubuntu's official images empties after every install, and
// apt is told to keep what it downloads there, whatever the image says.
const (
	aptCacheDir   = "/var/cache/apt"
	aptListsDir   = "/var/lib/apt/lists"
	aptArchives   = "/var/cache/apt/imagehub/"
	aptSourcesDir = "/run/imagehub/apt"
	pipCacheDir   = "/var/cache/imagehub/pip"
	condaCacheDir = "/var/cache/imagehub/conda"
)

// CacheScope names the package caches that a build shares: builds of the
// same owner ("system" or a group) on base images of the same repository
// (a registry host and path, such as docker.io/library/debian) share them,
// and nobody else. The owner keeps one group's builds from ever reading what
// another group's builds wrote into a cache (a pip wheel or a conda package
// is not checked against anything signed). The repository keeps apart the
// caches of different distributions, which it names in practice; its tags
// (versions of one distribution) share a cache, which every package manager
// here tolerates: apt's archive and list names carry release and version,
// pip's wheels their Python tags, conda's packages their build strings.
func CacheScope(owner, repository string) string {
	return owner + "/" + repository
}

// SafeWord reports whether s can stand in a RUN line as one shell word
// without quotes, and in a sed replacement: only letters, digits and
// ". _ : / % + -", and not starting with "-".
func SafeWord(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && strings.IndexByte("._:/%+-", c) < 0 {
			return false
		}
	}
	return true
}

// CheckSetup reports whether s can be written into a Containerfile safely.
// The settings that fill it are checked where they are entered; this is the
// generator's own guard.
func CheckSetup(s Setup) error {
	if len(s.CacheScope) > 512 || !SafeWord(s.CacheScope) {
		return fmt.Errorf("package cache scope %q is not a plain name", s.CacheScope)
	}
	m := s.Mirrors
	for _, u := range []string{m.PipIndexURL, m.PipExtraIndexURL, m.AptMirror} {
		if u != "" && (!SafeWord(u) || !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://"))) {
			return fmt.Errorf("mirror URL %q is not a plain http(s) URL", u)
		}
	}
	for _, c := range m.CondaChannels {
		if !SafeWord(c) {
			return fmt.Errorf("conda channel %q is not a plain name or URL", c)
		}
	}
	return nil
}

// cacheMount mounts the build's cache of one kind at target. sharing=locked
// lets one RUN step at a time use it: apt refuses to share its folders, and
// pip and conda write theirs without locks.
func cacheMount(scope, kind, target string) string {
	return " --mount=type=cache,id=" + scope + "/" + kind + ",target=" + target + ",sharing=locked"
}

// secretMount mounts one build secret at /run/secrets/<id>; mode is its
// octal file mode (buildah's default is 0400, readable by root alone).
func secretMount(id, mode string) string {
	m := " --mount=type=secret,id=" + id
	if mode != "" {
		m += ",mode=" + mode
	}
	return m
}

// secretPath is where a RUN step finds a build secret.
func secretPath(id string) string { return "/run/secrets/" + id }

// aptRun is the fixed text of the apt RUN line around its packages. Both
// apt folders are cache mounts, so nothing is left to clean in the layer.
// With a mirror, the base image's sources are copied, rewritten, into a
// tmpfs and apt reads them from there, so that the image keeps its own.
func aptRun(s Setup) (prefix, suffix string) {
	m := s.Mirrors
	mounts := cacheMount(s.CacheScope, "apt", aptCacheDir) + cacheMount(s.CacheScope, "apt-lists", aptListsDir)
	rewrite, opts := "", ""
	if m.AptMirror != "" {
		mounts += " --mount=type=tmpfs,target=" + aptSourcesDir
		rewrite = `for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do ` +
			`[ -f "$f" ] && sed -E 's#https?://[^/[:space:]]+#` + strings.TrimSuffix(m.AptMirror, "/") + `#g' "$f" > ` + aptSourcesDir + `/"${f##*/}"; done; `
		opts = " -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=" + aptSourcesDir
		if m.AptAuth {
			// 0444: apt's downloads run as its own user, _apt.
			mounts += secretMount(SecretAptAuth, "0444")
			opts += " -o Dir::Etc::netrc=" + secretPath(SecretAptAuth)
		}
	}
	prefix = mounts[1:] + " " + aptCheck + rewrite +
		"apt-get" + opts + " update && DEBIAN_FRONTEND=noninteractive apt-get" + opts +
		" install -y --no-install-recommends -o Dir::Cache::Archives=" + aptArchives + " -o APT::Keep-Downloaded-Packages=true"
	return prefix, ""
}

// condaRun is the fixed text of the conda RUN line around its packages.
// conda clean runs without the cache mount, on the image's own package
// folders.
func condaRun(s Setup) (prefix, suffix string) {
	m := s.Mirrors
	mounts := cacheMount(s.CacheScope, "conda", condaCacheDir)
	env := "CONDA_PKGS_DIRS=" + condaCacheDir
	if m.Condarc {
		mounts += secretMount(SecretCondarc, "")
		env += " CONDARC=" + secretPath(SecretCondarc)
	}
	cmd := " conda install --quiet --yes"
	if len(m.CondaChannels) > 0 {
		cmd += " --override-channels"
		for _, c := range m.CondaChannels {
			cmd += " -c " + c
		}
	}
	return mounts[1:] + " " + condaCheck + env + cmd, " && conda clean --all -f -y"
}

// pipRun is the fixed text of the pip RUN line around its packages.
// PIP_BREAK_SYSTEM_PACKAGES=1 lets pip install into a distribution's Python
// (PEP 668 "externally-managed-environment", e.g. Debian 12), which is what
// a recipe asks for inside an image; pip versions that predate the setting
// ignore it.
func pipRun(s Setup) (prefix, suffix string) {
	m := s.Mirrors
	mounts := cacheMount(s.CacheScope, "pip", pipCacheDir)
	env := "PIP_BREAK_SYSTEM_PACKAGES=1 PIP_CACHE_DIR=" + pipCacheDir
	if m.PipIndexURL != "" {
		env += " PIP_INDEX_URL=" + m.PipIndexURL
	}
	if m.PipExtraIndexURL != "" {
		env += " PIP_EXTRA_INDEX_URL=" + m.PipExtraIndexURL
	}
	if hosts := plainHTTPHosts(m.PipIndexURL, m.PipExtraIndexURL); hosts != "" {
		// pip ignores an index over plain http unless its host is trusted;
		// an administrator who chose one trusts it.
		env += " PIP_TRUSTED_HOST='" + hosts + "'"
	}
	if m.PipNetrc {
		mounts += secretMount(SecretPipNetrc, "")
		env += " NETRC=" + secretPath(SecretPipNetrc)
	}
	return mounts[1:] + " " + pipCheck + env + " pip install", ""
}

// plainHTTPHosts lists, space-separated, the host[:port] of each of urls
// that is plain http.
func plainHTTPHosts(urls ...string) string {
	var hosts []string
	for _, u := range urls {
		if rest, ok := strings.CutPrefix(u, "http://"); ok {
			host, _, _ := strings.Cut(rest, "/")
			if !slices.Contains(hosts, host) {
				hosts = append(hosts, host)
			}
		}
	}
	return strings.Join(hosts, " ")
}
