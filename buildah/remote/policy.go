package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"go.podman.io/image/v5/types"
)

// Policy says where this service's own registry requests may go: the Check
// button, a worker's look at a base image, its pull and its push. Group
// admins choose image and base-image URLs, so without a policy the server
// would fetch from any address they name, its own loopback listeners and the
// cloud's metadata service (169.254.169.254) included.
//
// A request may go to a public address, or to one of the configured
// registries (the embedded one, --registry's host, --insecure-registries)
// wherever that is. Every other loopback, link-local, private, shared
// (100.64.0.0/10), unspecified, multicast or reserved address is refused.
//
// The policy is enforced for every request containers/image sends (the
// ping, token requests, manifests, blobs and the redirects it follows)
// through SystemContext's DockerProxy hook, which sees each request's URL
// before it is sent. containers/image offers no hook on the dialer, so the
// host is resolved here and again by the dialer: a DNS name that answers a
// public address to the check and a private one to the dial a moment later
// (DNS rebinding) is not caught. Names of configured registries are never
// resolved here.
type Policy struct {
	// Registries are the configured registries, host[:port] as in image
	// references ("127.0.0.1:5000", "registry.internal"). They may be
	// anywhere; requests to them go without a look-up.
	Registries []string
	// Resolve looks a host name up; nil uses the system's resolver. Tests
	// give addresses as data here instead of asking DNS.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// NewPolicy is the policy of a server whose configured registries are
// these (host[:port]; empty entries are ignored).
func NewPolicy(registries ...string) *Policy {
	p := &Policy{}
	for _, r := range registries {
		if r = strings.TrimSpace(r); r != "" {
			p.Registries = append(p.Registries, strings.ToLower(r))
		}
	}
	return p
}

// RefusedError is a request the policy did not send.
type RefusedError struct {
	// Host is the host[:port] the request was for.
	Host string
	// Addr is the address that is not allowed, and Kind what kind it is
	// ("loopback", "link-local", "private", ...).
	Addr netip.Addr
	Kind string
}

// Error names the kind of address but not the address a name resolved to:
// the text reaches build logs, which group admins read, and should not map
// the inside of the network for them.
func (e *RefusedError) Error() string {
	if e.Addr.String() == strings.Trim(hostOnly(e.Host), "[]") {
		return fmt.Sprintf("%s is a %s address; only the configured registries may be reached there", e.Host, e.Kind)
	}
	return fmt.Sprintf("%s resolves to a %s address; only the configured registries may be reached there", e.Host, e.Kind)
}

// lookupTimeout bounds a host name look-up of the policy: the DockerProxy
// hook it runs in has no context of its own.
const lookupTimeout = 10 * time.Second

// CheckHost returns nil when a request may go to hostport (host[:port], as
// in a URL or an image reference), else why not: a *RefusedError for an
// address that is not allowed, or the look-up's error. Every address a name
// resolves to must be allowed, since the dialer may use any of them. A nil
// Policy allows everything.
func (p *Policy) CheckHost(ctx context.Context, hostport string) error {
	if p == nil {
		return nil
	}
	if p.configured(hostport) {
		return nil
	}
	host := strings.Trim(hostOnly(hostport), "[]")
	if host == "" {
		return fmt.Errorf("no host in %q", hostport)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
		resolve := p.Resolve
		if resolve == nil {
			resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if addrs, err = resolve(ctx, host); err != nil {
			return err
		}
		if len(addrs) == 0 {
			return fmt.Errorf("%s has no address", host)
		}
	}
	for _, a := range addrs {
		if kind := AddressKind(a); kind != "" {
			return &RefusedError{Host: hostport, Addr: a.Unmap(), Kind: kind}
		}
	}
	return nil
}

// configured reports whether hostport is one of the configured registries.
// A port that is its scheme's default has been dropped by hostOfURL.
func (p *Policy) configured(hostport string) bool {
	for _, r := range p.Registries {
		if SameHost(r, hostport) {
			return true
		}
	}
	return false
}

// hostOnly drops the port of host[:port] (and keeps an IPv6 literal's
// brackets).
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return hostport
}

// Ranges that are neither loopback, link-local, private, unspecified nor
// multicast by netip's reckoning, yet are no place for a request to a
// registry on the internet.
var specialRanges = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},  // "this network"
	{netip.MustParsePrefix("100.64.0.0/10"), "private"},  // shared address space (carrier-grade NAT)
	{netip.MustParsePrefix("192.0.0.0/24"), "private"},   // IETF protocol assignments
	{netip.MustParsePrefix("198.18.0.0/15"), "private"},  // benchmarking
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},   // reserved, and the broadcast address
	{netip.MustParsePrefix("fec0::/10"), "private"},      // site-local (deprecated)
	{netip.MustParsePrefix("2001:db8::/32"), "reserved"}, // documentation
	{netip.MustParsePrefix("100::/64"), "reserved"},      // discard-only
	{netip.MustParsePrefix("64:ff9b:1::/48"), "private"}, // local-use IPv4/IPv6 translation
	{netip.MustParsePrefix("2002::/16"), "reserved"},     // 6to4: may embed any IPv4 address
	{netip.MustParsePrefix("2001::/32"), "reserved"},     // Teredo: may embed any IPv4 address
	{netip.MustParsePrefix("::/96"), "reserved"},         // IPv4-compatible (deprecated)
}

// nat64 is the well-known NAT64 prefix: its addresses stand for the IPv4
// address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// AddressKind says what kind of address a is when a request to a registry
// must not go there ("loopback", "link-local", "private", "unspecified",
// "multicast", "reserved", "broadcast"), and "" for a public unicast
// address. An IPv4 address written as IPv6 (::ffff:10.0.0.1, or NAT64's
// 64:ff9b::10.0.0.1) is judged as the IPv4 address it stands for.
func AddressKind(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.IsPrivate():
		return "private"
	}
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "broadcast"
	}
	for _, r := range specialRanges {
		if r.prefix.Contains(a) {
			return r.kind
		}
	}
	return ""
}

// ErrForeignRealm is why a token request to another host than the
// registry's was not sent: it would have carried the registry's
// credentials.
var ErrForeignRealm = errors.New("the registry's token service is on another host, and its credentials are not sent there")

// dockerHubRealm is Docker Hub's token service: the one realm on another
// host that credentials for Docker Hub may go to.
const dockerHubRealm = "auth.docker.io"

// RealmMayGetCredentials reports whether credentials meant for registry
// (host[:port]) may go to a bearer token service (realm) on realmHost: only
// when it is the registry itself, or Docker Hub's own token service for
// Docker Hub.
func RealmMayGetCredentials(registry, realmHost string) bool {
	return SameHost(registry, realmHost) || (SameHost(registry, "docker.io") && strings.EqualFold(realmHost, dockerHubRealm))
}

// requestHook is the DockerProxy hook of a SystemContext for the registry
// host registry. Every request containers/image sends passes it before it is
// sent. It refuses
//
//   - a request that carries credentials to a bearer token service (realm)
//     on another host: containers/image sends the registry's username and
//     password with Basic authentication to whatever realm the registry's
//     WWW-Authenticate names, without checking its host. Such a request is
//     the one that has the "account" query parameter, which
//     containers/image's getBearerToken adds exactly when it has a username
//     (and every secret has one); a realm reached without credentials is
//     allowed (TestRealmOnAnotherHost checks both);
//   - with a policy, a request to an address the policy does not allow.
//
// Then the environment's proxy settings apply, as they would without the
// hook.
func (p *Policy) requestHook(registry string) func(*url.URL) (*url.URL, error) {
	return func(u *url.URL) (*url.URL, error) {
		host := hostOfURL(u)
		if u.Query().Has("account") && !RealmMayGetCredentials(registry, host) {
			return nil, fmt.Errorf("%w (registry %s, token service %s)", ErrForeignRealm, registry, host)
		}
		if err := p.CheckHost(context.Background(), host); err != nil {
			return nil, err
		}
		return http.ProxyFromEnvironment(&http.Request{URL: u})
	}
}

// hostOfURL is a URL's host[:port], lower case, without a port that is its
// scheme's default, so that it compares with the host of an image reference.
func hostOfURL(u *url.URL) string {
	host := strings.ToLower(u.Host)
	if p := u.Port(); (p == "443" && u.Scheme == "https") || (p == "80" && u.Scheme == "http") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return host
}

// SystemContext is the containers/image configuration for talking to the
// registry of ref (an image reference) with optional credentials: every
// request is checked by the policy (none for a nil Policy), and credentials
// never go to a token service on another host (see requestHook). insecure
// allows plain http or an unverified certificate.
func (p *Policy) SystemContext(ref string, auth *Auth, insecure bool) *types.SystemContext {
	sys := SystemContext(auth, insecure)
	registry := ref
	if norm, err := NormalizeReference(ref); err == nil {
		registry = Host(norm)
	}
	sys.DockerProxy = p.requestHook(registry)
	return sys
}
