package handlers

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"imagehub/store"
)

// countPasswordChecks makes the server count the sign-ins whose password
// reaches bcrypt.
func (env *testEnv) countPasswordChecks() *atomic.Int64 {
	var n atomic.Int64
	check := env.server.checkPassword
	env.server.checkPassword = func(ctx context.Context, username, password string) (*store.User, error) {
		n.Add(1)
		return check(ctx, username, password)
	}
	return &n
}

// signInFrom posts the sign-in form as if from addr (sent in
// X-Forwarded-For, which counts only behind a trusted proxy).
func (c *client) signInFrom(addr, username, password string) *http.Response {
	c.env.t.Helper()
	form := url.Values{"username": {username}, "password": {password}, "_csrf": {c.csrf}}
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if addr != "" {
		h["X-Forwarded-For"] = addr
	}
	return c.request(http.MethodPost, "/login", strings.NewReader(form.Encode()), h)
}

// TestParallelWrongSignIns sends 50 wrong sign-ins as admin at once: at most
// the limit reach bcrypt, the rest are refused with 429, and admin still
// signs in from another address.
func TestParallelWrongSignIns(t *testing.T) {
	for _, behindProxy := range []bool{false, true} {
		env := newTestEnv(t, func(c *Config) {
			if behindProxy {
				c.TrustedProxies = []*net.IPNet{{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)}}
			}
		})
		env.withClock()
		checks := env.countPasswordChecks()
		c := env.anonymous()
		c.getPage("/login")
		const n = 50
		var (
			wg    sync.WaitGroup
			codes = make([]int, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := c.signInFrom("203.0.113.7", "admin", "wrong-password")
				codes[i] = res.StatusCode
			}()
		}
		wg.Wait()
		counts := map[int]int{}
		for _, code := range codes {
			counts[code]++
		}
		if got := checks.Load(); got > loginFailsPerUserAddr {
			t.Errorf("behind a proxy %v: %d of %d parallel sign-ins reached bcrypt, want at most %d", behindProxy, got, n, loginFailsPerUserAddr)
		}
		if counts[http.StatusUnauthorized] > loginFailsPerUserAddr || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != n {
			t.Errorf("behind a proxy %v: answers %v, want at most %d × 401 and the rest 429", behindProxy, counts, loginFailsPerUserAddr)
		}
		if !behindProxy {
			continue
		}
		// The failures from 203.0.113.7 do not lock admin out elsewhere.
		other := env.anonymous()
		other.getPage("/login")
		if res := other.signInFrom("198.51.100.20", "admin", testAdminPassword); res.StatusCode != http.StatusSeeOther {
			t.Errorf("admin from another address after 50 failures: %d, want 303", res.StatusCode)
		}
	}
}

// TestTrustedProxies: without --trusted-proxies a client cannot choose the
// address it is counted under by sending X-Forwarded-For; behind a trusted
// proxy the address the proxy names counts, and one client's failures do
// not hold back another's.
func TestTrustedProxies(t *testing.T) {
	direct := newTestEnv(t)
	direct.withClock()
	c := direct.anonymous()
	c.getPage("/login")
	for i := range loginFailsPerUserAddr {
		if res := c.signInFrom("203.0.113."+string(rune('1'+i)), "alice", "wrong-password"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("direct, failure %d: %d", i+1, res.StatusCode)
		}
	}
	if res := c.signInFrom("198.51.100.1", "alice", testAdminPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("direct: a new X-Forwarded-For escaped the limit: %d, want 429", res.StatusCode)
	}

	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	proxied := newTestEnv(t, func(c *Config) { c.TrustedProxies = []*net.IPNet{loopback} })
	proxied.withClock()
	c = proxied.anonymous()
	c.getPage("/login")
	for i := range loginFailsPerUserAddr {
		if res := c.signInFrom("203.0.113.9", "alice", "wrong-password"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("proxied, failure %d: %d", i+1, res.StatusCode)
		}
	}
	if res := c.signInFrom("203.0.113.9", "alice", testAdminPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("proxied: the same client after %d failures: %d, want 429", loginFailsPerUserAddr, res.StatusCode)
	}
	// A client that puts an address of its own in front of the proxy's
	// gains nothing: the proxy appends the address it saw.
	if res := c.signInFrom("198.51.100.1, 203.0.113.9", "alice", testAdminPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("proxied: a forged first X-Forwarded-For entry escaped the limit: %d, want 429", res.StatusCode)
	}
	if res := c.signInFrom("203.0.113.10", "alice", testAdminPassword); res.StatusCode != http.StatusSeeOther {
		t.Errorf("proxied: another client: %d, want 303", res.StatusCode)
	}
}
