package remote_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"imagehub/buildah/remote"
)

// The addresses below are data for the policy function: no test sends a
// packet anywhere but to 127.0.0.0/8.
func TestPolicyAddressKind(t *testing.T) {
	tests := []struct {
		addr, kind string
	}{
		{"127.0.0.1", "loopback"},
		{"127.1.2.3", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:10.0.0.1", "private"},
		{"64:ff9b::a00:1", "private"}, // NAT64 of 10.0.0.1
		{"100.64.0.1", "private"},
		{"100.127.255.255", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"fec0::1", "private"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "link-local"},
		{"224.0.1.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "link-local"},
		{"ff05::2", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"2002:a00:1::1", "reserved"}, // 6to4, may carry 10.0.0.1
		{"2001:db8::1", "reserved"},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"11.0.0.1", ""},
		{"8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2606:4700::1111", ""},
	}
	for _, tt := range tests {
		if got := remote.AddressKind(netip.MustParseAddr(tt.addr)); got != tt.kind {
			t.Errorf("AddressKind(%s) = %q, want %q", tt.addr, got, tt.kind)
		}
	}
}

func TestPolicyCheckHost(t *testing.T) {
	// A resolver that answers from a table: names are data, not look-ups.
	names := map[string][]string{
		"registry.example.com": {"93.184.216.34"},
		"metadata.example.com": {"169.254.169.254"},
		"inside.example.com":   {"10.1.2.3"},
		"mixed.example.com":    {"93.184.216.34", "127.0.0.1"},
		"v6inside.example.com": {"fd00::5"},
		"registry.internal":    {"10.0.0.5"},
		"localhost":            {"127.0.0.1", "::1"},
	}
	p := remote.NewPolicy("127.0.0.1:5000", " registry.internal ", "", "[::1]:5001")
	p.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
		addrs, ok := names[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
	tests := []struct {
		host    string
		refused string // the kind of address refused, "" when allowed
		err     bool   // another error (the look-up failed)
	}{
		{host: "registry.example.com"},
		{host: "registry.example.com:443"},
		{host: "8.8.8.8"},
		{host: "[2606:4700::1111]:443"},
		{host: "127.0.0.1:5000"},    // the embedded registry
		{host: "registry.internal"}, // --registry, on a private address
		{host: "REGISTRY.internal"},
		{host: "[::1]:5001"},
		{host: "127.0.0.1:8080", refused: "loopback"}, // the web app, say
		{host: "127.0.0.1", refused: "loopback"},
		{host: "localhost:5000", refused: "loopback"}, // only as configured, 127.0.0.1:5000
		{host: "[::1]:5000", refused: "loopback"},
		{host: "registry.internal:8443", refused: "private"},
		{host: "169.254.169.254", refused: "link-local"},
		{host: "metadata.example.com", refused: "link-local"},
		{host: "inside.example.com:5000", refused: "private"},
		{host: "mixed.example.com", refused: "loopback"},
		{host: "v6inside.example.com", refused: "private"},
		{host: "[fe80::1]:80", refused: "link-local"},
		{host: "0.0.0.0:5000", refused: "unspecified"},
		{host: "nowhere.example.com", err: true},
	}
	for _, tt := range tests {
		err := p.CheckHost(context.Background(), tt.host)
		var refused *remote.RefusedError
		switch {
		case tt.refused != "":
			if !errors.As(err, &refused) || refused.Kind != tt.refused {
				t.Errorf("CheckHost(%s) = %v, want a refused %s address", tt.host, err, tt.refused)
			} else if !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), "configured registries") {
				t.Errorf("CheckHost(%s) says %q", tt.host, err)
			} else if a := refused.Addr.String(); strings.Contains(err.Error(), a) && !strings.Contains(tt.host, a) {
				t.Errorf("CheckHost(%s) tells the address a name resolves to: %q", tt.host, err)
			}
		case tt.err:
			if err == nil || errors.As(err, &refused) {
				t.Errorf("CheckHost(%s) = %v, want the look-up's error", tt.host, err)
			}
		case err != nil:
			t.Errorf("CheckHost(%s) = %v, want allowed", tt.host, err)
		}
	}
	p.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
		t.Errorf("the configured registry %s was looked up", host)
		return nil, errors.New("no look-ups")
	}
	for _, h := range []string{"registry.internal", "127.0.0.1:5000"} {
		if err := p.CheckHost(context.Background(), h); err != nil {
			t.Errorf("CheckHost(%s) = %v", h, err)
		}
	}
	if err := (*remote.Policy)(nil).CheckHost(context.Background(), "127.0.0.1:1"); err != nil {
		t.Errorf("a nil Policy refused: %v", err)
	}
}

func TestPolicyRealmMayGetCredentials(t *testing.T) {
	tests := []struct {
		registry, realm string
		want            bool
	}{
		{"registry.example.com", "registry.example.com", true},
		{"REGISTRY.example.com", "registry.example.com", true},
		{"127.0.0.1:5000", "127.0.0.1:5000", true},
		{"docker.io", "auth.docker.io", true},
		{"docker.io", "registry-1.docker.io", true},
		{"registry.example.com", "auth.docker.io", false},
		{"registry.example.com", "auth.example.com", false},
		{"registry.example.com", "registry.example.com.evil.example", false},
		{"127.0.0.1:5000", "127.0.0.1:5001", false},
		{"127.0.0.1:5000", "127.0.0.2:5000", false},
		{"quay.io", "docker.io", false},
	}
	for _, tt := range tests {
		if got := remote.RealmMayGetCredentials(tt.registry, tt.realm); got != tt.want {
			t.Errorf("RealmMayGetCredentials(%s, %s) = %v, want %v", tt.registry, tt.realm, got, tt.want)
		}
	}
}

// countingListener is a loopback listener that counts the connections made
// to it and closes them at once.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func listenCounting(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{Listener: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return l
}

func TestPolicyRefusesLoopback(t *testing.T) {
	ln := listenCounting(t)
	addr := ln.Addr().String()
	p := remote.NewPolicy("127.0.0.1:5000")
	_, err := p.Inspect(context.Background(), addr+"/x/y:z", nil, true)
	var refused *remote.RefusedError
	if !errors.As(err, &refused) || refused.Kind != "loopback" {
		t.Errorf("Inspect of a loopback listener that is no configured registry = %v, want refused", err)
	}
	if _, _, err := p.TagExists(context.Background(), addr+"/x/y:z", nil, true); !errors.As(err, &refused) {
		t.Errorf("TagExists = %v, want refused", err)
	}
	if n := ln.n.Load(); n != 0 {
		t.Errorf("the listener saw %d connections", n)
	}
	// The same listener as a configured registry is reached.
	if _, err := remote.NewPolicy(addr).Inspect(context.Background(), addr+"/x/y:z", nil, true); errors.As(err, &refused) {
		t.Errorf("a configured registry was refused: %v", err)
	}
	if ln.n.Load() == 0 {
		t.Error("a configured registry was not reached")
	}
}

// testRegistry is a registry for one test, on a loopback listener, that
// holds one image, answers "unknown" for everything else and logs every
// request's Authorization header. A non-empty realm makes it demand a
// bearer token from there; redirect sends manifest requests elsewhere.
type testRegistry struct {
	*httptest.Server
	realm    string
	redirect string
	manifest []byte
	config   []byte
	mu       sync.Mutex
	auths    []string
}

// newTestRegistry serves an OCI image "img:1" whose configuration is config.
func newTestRegistry(t *testing.T, config string) *testRegistry {
	t.Helper()
	return newTestRegistryOn(t, config, "127.0.0.1:0")
}

// newTestRegistryOn is newTestRegistry on a given loopback address.
func newTestRegistryOn(t *testing.T, config, addr string) *testRegistry {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &testRegistry{config: []byte(config)}
	r.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%064x","size":1000}]}`,
		digestOf(r.config), len(r.config), 1))
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.Listener.Close()
	r.Listener = ln
	r.Start()
	t.Cleanup(r.Close)
	return r
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func (r *testRegistry) host() string { return strings.TrimPrefix(r.URL, "http://") }

// set changes the registry's realm and redirect while it serves.
func (r *testRegistry) set(realm, redirect string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.realm, r.redirect = realm, redirect
}

func (r *testRegistry) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.auths = append(r.auths, req.URL.Path+" "+req.Header.Get("Authorization"))
	realm, redirect := r.realm, r.redirect
	r.mu.Unlock()
	switch {
	case req.URL.Path == "/token":
		json.NewEncoder(w).Encode(map[string]string{"token": "a-token"})
		return
	case realm != "" && !strings.HasPrefix(req.Header.Get("Authorization"), "Bearer "):
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="test"`, realm))
		w.WriteHeader(http.StatusUnauthorized)
		return
	case req.URL.Path == "/v2/":
		w.WriteHeader(http.StatusOK)
		return
	case redirect != "" && strings.Contains(req.URL.Path, "/manifests/"):
		http.Redirect(w, req, redirect, http.StatusTemporaryRedirect)
		return
	case req.URL.Path == "/v2/img/manifests/1":
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Write(r.manifest)
		return
	case req.URL.Path == "/v2/img/blobs/"+digestOf(r.config):
		w.Write(r.config)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
}

// seen is every request the registry got: its path and Authorization.
func (r *testRegistry) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.auths)
}

const plainConfig = `{"architecture":"amd64","os":"linux","config":{"User":"1000"},"rootfs":{"type":"layers","diff_ids":["sha256:` +
	"0000000000000000000000000000000000000000000000000000000000000001" + `"]}}`

func TestPolicyRedirectToARefusedAddress(t *testing.T) {
	reg := newTestRegistry(t, plainConfig)
	inside := listenCounting(t)
	reg.set("", "http://"+inside.Addr().String()+"/latest/meta-data")
	p := remote.NewPolicy(reg.host())
	_, err := p.Inspect(context.Background(), reg.host()+"/img:1", nil, true)
	var refused *remote.RefusedError
	if !errors.As(err, &refused) {
		t.Errorf("Inspect redirected to a loopback listener = %v, want refused", err)
	}
	if n := inside.n.Load(); n != 0 {
		t.Errorf("the redirect target saw %d connections", n)
	}
}

// TestRealmOnAnotherHost: a registry whose WWW-Authenticate names a token
// service (realm) on another host never gets that host its credentials. The
// other host is a second loopback listener that logs every Authorization
// header it sees.
func TestRealmOnAnotherHost(t *testing.T) {
	const password = "realm-secret-7f3"
	auth := &remote.Auth{Username: "robot", Password: password}
	// Another address, not only another port, where the system has one.
	otherAddr := "127.0.0.2:0"
	if ln, err := net.Listen("tcp", otherAddr); err != nil {
		otherAddr = "127.0.0.1:0"
	} else {
		ln.Close()
	}
	other := newTestRegistryOn(t, plainConfig, otherAddr)
	reg := newTestRegistry(t, plainConfig)
	reg.set(other.URL+"/token", "")

	for _, p := range []*remote.Policy{nil, remote.NewPolicy(reg.host(), other.host())} {
		_, err := p.Inspect(context.Background(), reg.host()+"/img:1", auth, true)
		if !errors.Is(err, remote.ErrForeignRealm) {
			t.Errorf("Inspect with a realm on %s = %v, want ErrForeignRealm", other.host(), err)
		}
		if _, _, err := p.TagExists(context.Background(), reg.host()+"/img:1", auth, true); !errors.Is(err, remote.ErrForeignRealm) {
			t.Errorf("TagExists with a realm on another host = %v, want ErrForeignRealm", err)
		}
	}
	for _, s := range other.seen() {
		if _, a, _ := strings.Cut(s, " "); a != "" {
			t.Errorf("the other host saw credentials: %q", s)
		}
	}
	for _, s := range reg.seen() {
		if strings.Contains(s, "Basic") {
			t.Errorf("the registry was sent Basic credentials it did not ask for: %q", s)
		}
	}

	// Without credentials the other host's token service is used, and gets
	// none.
	info, err := remote.Inspect(context.Background(), reg.host()+"/img:1", nil, true)
	if err != nil || info.User != "1000" {
		t.Errorf("anonymous Inspect with a realm on another host = %+v, %v", info, err)
	}
	if got := other.seen(); !slices.Contains(got, "/token ") {
		t.Errorf("the other host saw %q, want an anonymous token request", got)
	}

	// The control: a realm on the registry itself gets the credentials, so
	// the log above would have shown them.
	reg.set(reg.URL+"/token", "")
	if _, err := remote.Inspect(context.Background(), reg.host()+"/img:1", auth, true); err != nil {
		t.Fatal(err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("robot:"+password))
	if got := reg.seen(); !slices.Contains(got, "/token "+basic) {
		t.Errorf("the registry's own token service saw %q, want the credentials", got)
	}
}

func TestInspectOnBuild(t *testing.T) {
	for _, tt := range []struct {
		name, config string
		want         []string
	}{
		{"none", plainConfig, nil},
		{"docker", `{"architecture":"amd64","os":"linux","config":{"OnBuild":["RUN id","ADD http://x/ /"]},"rootfs":{"type":"layers","diff_ids":[]}}`, []string{"RUN id", "ADD http://x/ /"}},
		// buildah reads the blob with encoding/json, whose keys match
		// regardless of case: so must Inspect.
		{"any case", `{"architecture":"amd64","os":"linux","config":{"onbuild":["RUN id"]},"rootfs":{"type":"layers","diff_ids":[]}}`, []string{"RUN id"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := newTestRegistry(t, tt.config)
			info, err := remote.Inspect(context.Background(), reg.host()+"/img:1", nil, true)
			if err != nil || !slices.Equal(info.OnBuild, tt.want) {
				t.Errorf("Inspect = %+v, %v; want OnBuild %q", info, err, tt.want)
			}
		})
	}
}
