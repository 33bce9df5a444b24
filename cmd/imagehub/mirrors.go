package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"imagehub/store"
)

// packageFlag is one flag of the package mirrors: a field of
// store.PackageSettings, named in store errors by its JSON key.
type packageFlag struct {
	name, key, usage string
	value            *string
}

// packageFlags lists the flags that give the package settings' defaults;
// the Settings page's non-empty fields override them.
func packageFlags(p *store.PackageSettings) []packageFlag {
	return []packageFlag{
		{"pip-index-url", "pipIndexUrl", "pip index (PEP 503) that builds use instead of PyPI", &p.PipIndexURL},
		{"pip-extra-index-url", "pipExtraIndexUrl", "another pip index that builds search as well", &p.PipExtraIndexURL},
		{"pip-secret", "pipSecret", "secret with the credentials of the pip indexes on its host", &p.PipSecret},
		{"conda-channels", "condaChannels", "comma-separated channels (names or URLs), then the only ones conda installs from", &p.CondaChannels},
		{"conda-channel-alias", "condaChannelAlias", "URL that conda looks channel names up under", &p.CondaChannelAlias},
		{"conda-secret", "condaSecret", "secret with the credentials of the conda channel alias", &p.CondaSecret},
		{"apt-mirror", "aptMirror", "APT mirror URL that replaces the scheme and host of the base image's sources", &p.AptMirror},
		{"apt-secret", "aptSecret", "secret with the credentials of the APT mirror", &p.AptSecret},
	}
}

// addPackageFlags registers the package flags, each with its IMAGEHUB_*
// variable as default.
func addPackageFlags(fs *flag.FlagSet, p *store.PackageSettings) {
	for _, f := range packageFlags(p) {
		fs.StringVar(f.value, f.name, os.Getenv(envName(f.name)), f.usage)
	}
}

// envName is a flag's environment variable: pip-index-url → IMAGEHUB_PIP_INDEX_URL.
func envName(flagName string) string {
	return "IMAGEHUB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// packageFlagsError turns a store error about the package settings into
// one that names the flags ("--apt-mirror: ...").
func packageFlagsError(err error) error {
	fields := store.ErrorFields(err)
	if len(fields) == 0 {
		return err
	}
	names := map[string]string{}
	for _, f := range packageFlags(&store.PackageSettings{}) {
		names[f.key] = "--" + f.name
	}
	var msgs []string
	for key, reason := range fields {
		msgs = append(msgs, names[key]+": "+reason)
	}
	sort.Strings(msgs)
	return errors.New(strings.Join(msgs, "; "))
}

// setPackageDefaults gives the store the flags' package settings and
// refuses secrets that do not exist or do not fit the flags' URLs.
func setPackageDefaults(ctx context.Context, st *store.Store, p store.PackageSettings) error {
	st.SetPackageDefaults(p)
	if err := st.CheckPackageDefaults(ctx); err != nil {
		return fmt.Errorf("package mirrors: %w", packageFlagsError(err))
	}
	return nil
}
