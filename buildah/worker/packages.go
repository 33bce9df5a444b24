package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage/pkg/unshare"

	"imagehub/buildah/recipe"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// This file prepares what a recipe's RUN steps need for the package caches
// and the mirrors: buildah's cache folder pointed at the shared one, the
// mirrors' credentials as build secrets, and the mirrors' addresses for the
// build's network. Credentials reach RUN steps only as build secrets, files
// that buildah mounts for the one step and that no layer keeps; never as an
// argument, an environment variable or a line of the Containerfile.

// packageSetup is what preparePackages made for one build.
type packageSetup struct {
	// setup goes into the Containerfile.
	setup recipe.Setup
	// secrets are buildah's build secrets, "id=ID,src=FILE,type=file".
	secrets []string
	// mirrors are the mirrors' addresses, which the build's network lets
	// RUN steps reach even in a private range.
	mirrors []netip.AddrPort
}

// preparePackages makes the package setup of a build: the cache scope from
// the image's owner and the base image's repository, the shared cache
// folder, the credential files in the build's folder, and the mirrors'
// addresses. It tells the log which mirrors the build uses (never with
// their credentials).
func preparePackages(ctx context.Context, spec workerspec.Spec, log io.Writer) (*packageSetup, error) {
	if spec.Owner == "" {
		return nil, fmt.Errorf("the worker spec names no owner, which the package caches are kept apart by")
	}
	base, err := reference.ParseNormalizedNamed(spec.BaseImage)
	if err != nil {
		return nil, fmt.Errorf("base image: %w", err)
	}
	m := spec.Mirrors
	ps := &packageSetup{setup: recipe.Setup{
		CacheScope: recipe.CacheScope(spec.Owner, base.Name()),
		Mirrors: recipe.Mirrors{PipIndexURL: m.PipIndexURL, PipExtraIndexURL: m.PipExtraIndexURL,
			CondaChannels: m.CondaChannels, AptMirror: m.AptMirror},
	}}
	if err := recipe.CheckSetup(ps.setup); err != nil {
		return nil, err
	}
	if err := linkPackageCache(spec.TmpDir, spec.PackageCache); err != nil {
		return nil, fmt.Errorf("package cache: %w", err)
	}
	files, err := credentialFiles(m)
	if err != nil {
		return nil, err
	}
	_, ps.setup.Mirrors.PipNetrc = files[recipe.SecretPipNetrc]
	_, ps.setup.Mirrors.Condarc = files[recipe.SecretCondarc]
	_, ps.setup.Mirrors.AptAuth = files[recipe.SecretAptAuth]
	if ps.secrets, err = writeSecrets(filepath.Join(spec.TmpDir, "secrets"), files); err != nil {
		return nil, fmt.Errorf("build secrets: %w", err)
	}
	describeMirrors(m, log)
	ps.mirrors = mirrorAddrs(ctx, m.URLs(), log)
	return ps, nil
}

// linkPackageCache makes buildah keep the cache mounts of RUN steps in
// cacheDir. buildah keeps them in $TMPDIR/buildah-cache-<uid>, and TMPDIR is
// the build's own folder, removed after the build: a link there to cacheDir
// makes them outlive the build. buildah creates each cache owned by the
// container's root (a subordinate id), so that RUN steps can write it; the
// folders up to it are passable (0711), as the data folder is.
func linkPackageCache(tmpDir, cacheDir string) error {
	if cacheDir == "" {
		return nil
	}
	if err := os.MkdirAll(cacheDir, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(cacheDir, 0o711); err != nil {
		return err
	}
	tmp, err := filepath.Abs(tmpDir)
	if err != nil {
		return err
	}
	return os.Symlink(cacheDir, filepath.Join(tmp, "buildah-cache-"+strconv.Itoa(unshare.GetRootlessUID())))
}

// credentialFiles renders the mirrors' credentials as the files the package
// managers read, by build secret id: a netrc for pip, an apt_auth.conf for
// apt, a condarc with the channel alias for conda (which takes credentials
// in URLs only; a condarc is written whenever there is an alias). A
// credential goes only to the URLs on its own host.
func credentialFiles(m workerspec.Mirrors) (map[string]string, error) {
	files := map[string]string{}
	var netrc strings.Builder
	seen := map[string]bool{}
	for _, u := range []string{m.PipIndexURL, m.PipExtraIndexURL} {
		if pu, err := url.Parse(u); err == nil && m.PipAuth.For(u) && !seen[pu.Hostname()] {
			seen[pu.Hostname()] = true
			if err := netrcEntry(&netrc, pu.Hostname(), m.PipAuth); err != nil {
				return nil, fmt.Errorf("the pip mirror's credentials: %w", err)
			}
		}
	}
	if netrc.Len() > 0 {
		files[recipe.SecretPipNetrc] = netrc.String()
	}
	if u, err := url.Parse(m.AptMirror); err == nil && m.AptAuth.For(m.AptMirror) {
		var auth strings.Builder
		// apt sends credentials over plain http only to a machine that
		// names its protocol.
		if err := netrcEntry(&auth, u.Scheme+"://"+u.Host, m.AptAuth); err != nil {
			return nil, fmt.Errorf("the APT mirror's credentials: %w", err)
		}
		files[recipe.SecretAptAuth] = auth.String()
	}
	if u, err := url.Parse(m.CondaChannelAlias); err == nil && m.CondaChannelAlias != "" {
		if m.CondaAuth.For(m.CondaChannelAlias) {
			u.User = url.UserPassword(m.CondaAuth.Username, m.CondaAuth.Password)
		}
		alias, _ := json.Marshal(u.String()) // YAML reads a JSON string
		files[recipe.SecretCondarc] = "channel_alias: " + string(alias) + "\n"
	}
	return files, nil
}

// netrcEntry writes one "machine" line of a netrc (or apt_auth.conf) file,
// whose words cannot hold spaces, quotes, backslashes or "#"
// (store.NetrcReason; the Settings page refuses such a secret already).
func netrcEntry(b *strings.Builder, machine string, a *workerspec.HostAuth) error {
	if r := store.NetrcReason(a.Username, a.Password); r != "" {
		return errors.New(r)
	}
	fmt.Fprintf(b, "machine %s login %s password %s\n", machine, a.Username, a.Password)
	return nil
}

// writeSecrets writes each file into dir (0700, files 0600) and returns
// them as buildah's build secrets.
func writeSecrets(dir string, files map[string]string) ([]string, error) {
	if len(files) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var secrets []string
	for _, id := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(dir, id)
		if err := os.WriteFile(path, []byte(files[id]), 0o600); err != nil {
			return nil, err
		}
		secrets = append(secrets, "id="+id+",src="+path+",type=file")
	}
	return secrets, nil
}

// describeMirrors says in the log which mirrors the build uses and whose
// credentials go with them (a host, never a password).
func describeMirrors(m workerspec.Mirrors, log io.Writer) {
	for _, x := range []struct {
		name, url string
		auth      *workerspec.HostAuth
	}{
		{"pip index", m.PipIndexURL, m.PipAuth}, {"pip extra index", m.PipExtraIndexURL, m.PipAuth},
		{"conda channel alias", m.CondaChannelAlias, m.CondaAuth}, {"APT mirror", m.AptMirror, m.AptAuth},
	} {
		if x.url == "" {
			continue
		}
		with := ""
		if x.auth.For(x.url) {
			with = " (with credentials for " + x.auth.Host + ")"
		}
		fmt.Fprintf(log, "imagehub: %s %s%s\n", x.name, x.url, with)
	}
	if len(m.CondaChannels) > 0 {
		fmt.Fprintf(log, "imagehub: conda channels %s\n", strings.Join(m.CondaChannels, ", "))
	}
}

// mirrorAddrs resolves the mirrors' hosts into the addresses and ports the
// build's network opens. A host on this machine's loopback or a link-local
// address stays closed whatever is opened (see network.go), and the log
// says so; a host that does not resolve is left to fail in the RUN step,
// with the package manager's own message.
func mirrorAddrs(ctx context.Context, urls []string, log io.Writer) []netip.AddrPort {
	var out []netip.AddrPort
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(u.Port(), 10, 16)
		if u.Port() == "" {
			port, err = 80, nil
			if u.Scheme == "https" {
				port = 443
			}
		}
		if err != nil {
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
		if err != nil {
			fmt.Fprintf(log, "imagehub: mirror host %s does not resolve: %v\n", u.Hostname(), err)
			continue
		}
		for _, ip := range ips {
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
				fmt.Fprintf(log, "imagehub: mirror host %s is %s, which RUN steps never reach\n", u.Hostname(), ip)
				continue
			}
			if ap := netip.AddrPortFrom(ip, uint16(port)); !slices.Contains(out, ap) {
				out = append(out, ap)
			}
		}
	}
	return out
}
