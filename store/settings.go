package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// PackageSettings are the package mirrors that builds fetch from, for
// installations behind a firewall, and the secrets (the Secrets page) that
// hold their credentials. An empty field means none; the zero value keeps
// the sources that base images name. The server's flags give one set (the
// defaults, SetPackageDefaults) and the Settings page another, whose
// non-empty fields win, field by field (Over).
type PackageSettings struct {
	// PipIndexURL replaces PyPI; PipExtraIndexURL is searched as well.
	PipIndexURL      string `json:"pipIndexUrl"`
	PipExtraIndexURL string `json:"pipExtraIndexUrl"`
	// PipSecret holds the credentials of the pip URLs on its host.
	PipSecret string `json:"pipSecret"`
	// CondaChannels, comma-separated names or URLs, are then the only
	// channels conda installs from.
	CondaChannels string `json:"condaChannels"`
	// CondaChannelAlias is the URL that channel names are looked up under.
	CondaChannelAlias string `json:"condaChannelAlias"`
	// CondaSecret holds the credentials of the channel alias's host.
	CondaSecret string `json:"condaSecret"`
	// AptMirror replaces the scheme and host of every APT source.
	AptMirror string `json:"aptMirror"`
	// AptSecret holds the APT mirror's credentials.
	AptSecret string `json:"aptSecret"`
}

// fields lists the settings with their field names (as in JSON and the
// form) and their rows in the settings table.
func (p *PackageSettings) fields() []struct {
	key, row string
	v        *string
} {
	return []struct {
		key, row string
		v        *string
	}{
		{"pipIndexUrl", "pip_index_url", &p.PipIndexURL},
		{"pipExtraIndexUrl", "pip_extra_index_url", &p.PipExtraIndexURL},
		{"pipSecret", "pip_secret", &p.PipSecret},
		{"condaChannels", "conda_channels", &p.CondaChannels},
		{"condaChannelAlias", "conda_channel_alias", &p.CondaChannelAlias},
		{"condaSecret", "conda_secret", &p.CondaSecret},
		{"aptMirror", "apt_mirror", &p.AptMirror},
		{"aptSecret", "apt_secret", &p.AptSecret},
	}
}

// Over returns p with its empty fields taken from defaults: the page's
// settings over the flags'.
func (p PackageSettings) Over(defaults PackageSettings) PackageSettings {
	out := p
	d := defaults.fields()
	for i, f := range out.fields() {
		if *f.v == "" {
			*f.v = *d[i].v
		}
	}
	return out
}

// Channels splits CondaChannels into its names and URLs.
func (p PackageSettings) Channels() []string {
	var out []string
	for _, c := range strings.Split(p.CondaChannels, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// mirrorSecret is one package manager's secret with the URLs it may be
// offered to; netrc says whether the credentials go into a netrc-style file
// (NetrcReason).
type mirrorSecret struct {
	key, manager, name string
	urls               []string
	netrc              bool
}

// secrets lists each package manager's secret and the URLs it is for.
// conda takes credentials in its channel alias alone (escaped in the URL).
func (p PackageSettings) secrets() []mirrorSecret {
	return []mirrorSecret{
		{"pipSecret", "pip", p.PipSecret, []string{p.PipIndexURL, p.PipExtraIndexURL}, true},
		{"condaSecret", "conda", p.CondaSecret, []string{p.CondaChannelAlias}, false},
		{"aptSecret", "APT", p.AptSecret, []string{p.AptMirror}, true},
	}
}

// Validate checks each field on its own: URLs, channels, secret names.
// Whether the secrets exist and fit the URLs is checked on saving.
func (p *PackageSettings) Validate() error {
	f := map[string]string{}
	for _, x := range []struct {
		key, v string
	}{{"pipIndexUrl", p.PipIndexURL}, {"pipExtraIndexUrl", p.PipExtraIndexURL},
		{"condaChannelAlias", p.CondaChannelAlias}, {"aptMirror", p.AptMirror}} {
		if r := mirrorURLReason(x.v); r != "" {
			f[x.key] = r
		}
	}
	if r := channelsReason(p.Channels()); r != "" {
		f["condaChannels"] = r
	}
	for _, m := range p.secrets() {
		if m.name != "" {
			if r := nameReason(m.name); r != "" {
				f[m.key] = r
			}
		}
	}
	if len(f) > 0 {
		return Invalid(f)
	}
	return nil
}

// urlCharsRE is what a mirror URL may hold: RUN lines use it as one shell
// word, unquoted, and in a sed replacement.
var urlCharsRE = regexp.MustCompile(`^[A-Za-z0-9._:/%+-]+$`)

// mirrorURLReason says why s is not a usable mirror URL, or "".
func mirrorURLReason(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case len(s) > 1024:
		return "At most 1024 characters."
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		return "An http:// or https:// URL, such as https://pypi.example.com/simple."
	case PortReason(u.Host) != "":
		return PortReason(u.Host)
	case u.User != nil:
		return "No credentials in the URL: choose a secret for them."
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return "No query (?) or fragment (#)."
	case !urlCharsRE.MatchString(s):
		return "Only letters, digits and . _ : / % + - (escape anything else with %)."
	case unreachableHost(u.Hostname()):
		return "Builds never reach this host's loopback or link-local addresses: give an address they can reach."
	}
	return ""
}

// unreachableHost reports whether a URL's host is one that RUN steps are
// never let through to, whatever is allowed.
func unreachableHost(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())
}

// channelNameRE is a conda channel name, such as conda-forge or pkgs/main.
var channelNameRE = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*$`)

// channelsReason says why a channel list is not usable, or "".
func channelsReason(channels []string) string {
	if len(channels) > 20 {
		return "At most 20 channels."
	}
	for _, c := range channels {
		if strings.Contains(c, "://") {
			if r := mirrorURLReason(c); r != "" {
				return fmt.Sprintf("%q: %s", c, r)
			}
		} else if len(c) > 200 || !channelNameRE.MatchString(c) {
			return fmt.Sprintf("%q is neither a channel name (such as conda-forge) nor an http(s) URL; separate channels with commas.", c)
		}
	}
	return ""
}

// SetPackageDefaults sets the package settings that the flags give, which
// the Settings page's non-empty fields override.
func (s *Store) SetPackageDefaults(p PackageSettings) { s.packageDefaults.Store(&p) }

// PackageDefaults returns the package settings the flags give.
func (s *Store) PackageDefaults() PackageSettings {
	if p := s.packageDefaults.Load(); p != nil {
		return *p
	}
	return PackageSettings{}
}

// PackageSettings returns the package settings saved on the Settings page
// (empty fields: the flags decide).
func (s *Store) PackageSettings(ctx context.Context) (PackageSettings, error) {
	var p PackageSettings
	rows, err := s.db.QueryContext(ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	saved := map[string]string{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return p, err
		}
		saved[name] = value
	}
	for _, f := range p.fields() {
		*f.v = saved[f.row]
	}
	return p, rows.Err()
}

// EffectivePackageSettings returns what the next build uses: the page's
// settings over the flags'.
func (s *Store) EffectivePackageSettings(ctx context.Context) (PackageSettings, error) {
	p, err := s.PackageSettings(ctx)
	return p.Over(s.PackageDefaults()), err
}

// SavePackageSettings replaces the Settings page's package settings. Each
// field is checked, and each secret of the result (p over the flags') must
// exist and be for the host of one of its package manager's URLs, since a
// credential is only ever offered to its own host.
func (s *Store) SavePackageSettings(ctx context.Context, p PackageSettings) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		f, err := s.checkMirrorSecrets(ctx, tx, p.Over(s.PackageDefaults()))
		if err != nil {
			return err
		}
		for key, reason := range ErrorFields(p.Validate()) {
			f[key] = reason
		}
		if len(f) > 0 {
			return Invalid(f)
		}
		for _, f := range p.fields() {
			if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, f.row, *f.v); err != nil {
				return err
			}
		}
		return nil
	})
}

// CheckPackageDefaults checks the flags' package settings against the
// secrets in the store, as SavePackageSettings checks the page's.
func (s *Store) CheckPackageDefaults(ctx context.Context) error {
	return s.readTx(ctx, func(tx *sql.Tx) error {
		f, err := s.checkMirrorSecrets(ctx, tx, s.PackageDefaults())
		if err == nil && len(f) > 0 {
			err = Invalid(f)
		}
		return err
	})
}

// checkMirrorSecrets says, by field, which secrets of p do not exist, are
// for none of their package manager's URLs' hosts, or hold credentials
// that their package manager's credential file cannot carry.
func (s *Store) checkMirrorSecrets(ctx context.Context, tx *sql.Tx, p PackageSettings) (map[string]string, error) {
	f := map[string]string{}
	for _, m := range p.secrets() {
		if m.name == "" {
			continue
		}
		var host, username string
		var sealed []byte
		err := tx.QueryRowContext(ctx, `SELECT registry_host, username, password_enc FROM secrets WHERE name = ?`, m.name).Scan(&host, &username, &sealed)
		if errors.Is(err, sql.ErrNoRows) {
			f[m.key] = fmt.Sprintf("No secret is named %q.", m.name)
			continue
		} else if err != nil {
			return nil, err
		}
		if !onHost(m.urls, host) {
			f[m.key] = fmt.Sprintf("Secret %q is for %s, and no %s URL is on that host.", m.name, host, m.manager)
			continue
		}
		if !m.netrc {
			continue
		}
		password, err := s.cipher.open(sealed)
		if err != nil {
			return nil, err
		}
		if r := NetrcReason(username, password); r != "" {
			f[m.key] = fmt.Sprintf("Secret %q: %s", m.name, r)
		}
	}
	return f, nil
}

// NetrcReason says why a username and password cannot be written to the
// netrc-style files that pip and APT read their mirrors' credentials from,
// whose words hold no space, quote, backslash or "#"; or "".
func NetrcReason(username, password string) string {
	for _, w := range []string{username, password} {
		if w == "" || strings.ContainsAny(w, " \t\r\n\"'\\#") {
			return "its username or password is empty or holds a space, a quote, a backslash or '#', which the credential files of pip and APT (netrc) cannot carry; give the mirror an account without them."
		}
	}
	return ""
}

// onHost reports whether one of urls is on host (host[:port], as a
// secret's host is written).
func onHost(urls []string, host string) bool {
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil && raw != "" && strings.EqualFold(u.Host, host) {
			return true
		}
	}
	return false
}

// usedByPackageSettings says which package setting (of the page or the
// flags) names a secret, or "".
func (s *Store) usedByPackageSettings(ctx context.Context, tx *sql.Tx, name string) (string, error) {
	var key string
	err := tx.QueryRowContext(ctx, `SELECT name FROM settings WHERE name IN ('pip_secret', 'conda_secret', 'apt_secret') AND value = ?`, name).Scan(&key)
	if err == nil {
		return "the Settings page (" + key + ")", nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	for _, m := range s.PackageDefaults().secrets() {
		if m.name == name {
			return "the server's --" + strings.ToLower(m.manager) + "-secret flag", nil
		}
	}
	return "", nil
}
