package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a clock that moves only when told to.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// withClock gives the server a test clock; call it before any request.
func (env *testEnv) withClock() *testClock {
	clk := &testClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	env.server.now = clk.Now
	return clk
}

// fail makes an attempt that fails; it must not be refused.
func (l *loginLimiter) fail(t *testing.T, now time.Time, username, addr string) {
	t.Helper()
	if a, wait := l.begin(now, username, addr); a == nil {
		t.Fatalf("%s from %s at %v refused: wait %v", username, addr, now, wait)
	}
}

// wait is how long an attempt must wait, 0 when it may go on (and is then
// taken back).
func (l *loginLimiter) wait(now time.Time, username, addr string) time.Duration {
	a, wait := l.begin(now, username, addr)
	if a != nil {
		a.abandoned()
	}
	return wait
}

func TestLoginLimiter(t *testing.T) {
	l := newLoginLimiter()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := 0; i < loginFailsPerUserAddr; i++ {
		l.fail(t, t0.Add(time.Duration(i)*time.Minute), "ann", "10.0.0.1")
	}
	now := t0.Add(5 * time.Minute)
	if w := l.wait(now, "ANN ", "10.0.0.1"); w != 10*time.Minute {
		t.Errorf("after 5 failures (other spelling): wait %v, want 10m (the first failure leaves the window)", w)
	}
	if w := l.wait(now, "ann", "10.0.0.9"); w != 0 {
		t.Errorf("ann from another address is held back by the failures from 10.0.0.1: %v", w)
	}
	if w := l.wait(now, "bob", "10.0.0.1"); w != 0 {
		t.Errorf("another user from the same address is refused after 5 failures: %v", w)
	}
	if w := l.wait(t0.Add(15*time.Minute), "ann", "10.0.0.1"); w != 0 {
		t.Errorf("after the window: wait %v", w)
	}
	// A right password forgets ann's failures from that address.
	a, _ := l.begin(t0.Add(15*time.Minute), "ann", "10.0.0.1")
	a.succeeded()
	if w := l.wait(now, "ann", "10.0.0.1"); w != 0 {
		t.Errorf("after a success the username still waits %v", w)
	}
	// Per address: 20 failures over many usernames.
	for i := 0; i < loginFailsPerAddr; i++ {
		l.fail(t, now, "user"+string(rune('a'+i)), "10.0.0.2")
	}
	if w := l.wait(now, "zed", "10.0.0.2"); w != 15*time.Minute {
		t.Errorf("address after 20 failures: wait %v, want 15m", w)
	}
	if w := l.wait(now, "zed", "10.0.0.3"); w != 0 {
		t.Errorf("another address: wait %v", w)
	}
	// An IPv6 client counts by its /64.
	for i := 0; i < loginFailsPerUserAddr; i++ {
		l.fail(t, now, "ann", "2001:db8:1:2::"+string(rune('a'+i)))
	}
	if w := l.wait(now, "ann", "2001:db8:1:2:ffff::1"); w == 0 {
		t.Error("another address of the same IPv6 /64 is not held back")
	}
	if w := l.wait(now, "ann", "2001:db8:1:3::1"); w != 0 {
		t.Errorf("another /64: wait %v", w)
	}
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{
		{30 * time.Second, "try again in 1 minute."},
		{14*time.Minute + time.Second, "try again in 15 minutes."},
		{2 * time.Minute, "try again in 2 minutes."},
	} {
		if got := tooManyMessage(tc.wait); !strings.HasSuffix(got, tc.want) || !strings.HasPrefix(got, "Too many failed sign-ins") {
			t.Errorf("message for %v = %q", tc.wait, got)
		}
	}
}

// TestLoginLimiterTakesBack counts an attempt while its password is
// checked: a right password takes it back from the address's count, an
// attempt that could not be checked from both counts.
func TestLoginLimiterTakesBack(t *testing.T) {
	l := newLoginLimiter()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var pending []*loginAttempt
	for range loginFailsPerUserAddr {
		a, _ := l.begin(now, "ann", "10.0.0.1")
		pending = append(pending, a)
	}
	if w := l.wait(now, "ann", "10.0.0.1"); w == 0 {
		t.Fatal("attempts being checked do not count")
	}
	for _, a := range pending {
		a.abandoned()
	}
	if len(l.failures) != 0 {
		t.Errorf("abandoned attempts left counts: %v", l.failures)
	}
	for range loginFailsPerAddr - 1 {
		a, _ := l.begin(now, "ann", "10.0.0.2")
		a.succeeded()
	}
	if w := l.wait(now, "bob", "10.0.0.2"); w != 0 {
		t.Errorf("sign-ins with the right password count against the address: %v", w)
	}
}

func TestLoginLimiterForgetsOldKeys(t *testing.T) {
	l := newLoginLimiter()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := 0; i < loginMaxKeys/2; i++ {
		l.fail(t, t0.Add(time.Duration(i)*time.Millisecond), "u"+strings.Repeat("x", i%7)+string(rune(0x4e00+i)), fmt.Sprintf("10.0.%d.%d", i/200, i%200))
	}
	l.fail(t, t0.Add(time.Hour), "late", "10.1.0.2")
	if n := len(l.failures); n != 2 {
		t.Errorf("%d keys kept after the sweep, want 2 (late's from 10.1.0.2, and that address)", n)
	}
}

func TestLoginRateLimit(t *testing.T) {
	env := newTestEnv(t)
	clk := env.withClock()
	c := env.anonymous()
	c.getPage("/login")
	attempt := func(password string) (*http.Response, string) {
		t.Helper()
		res := c.postForm("/login", url.Values{"username": {"alice"}, "password": {password}})
		doc := c.readPage(res)
		return res, strings.TrimSpace(doc.Find("#login-error").Text())
	}
	for i := 0; i < 5; i++ {
		if res, msg := attempt("wrong-password"); res.StatusCode != http.StatusUnauthorized || !strings.Contains(msg, "Wrong username or password") {
			t.Fatalf("failure %d: %d %q", i+1, res.StatusCode, msg)
		}
		clk.Advance(time.Minute)
	}
	// The sixth attempt is refused even with the right password.
	res, msg := attempt(testAdminPassword)
	if res.StatusCode != http.StatusTooManyRequests || msg != "Too many failed sign-ins; try again in 10 minutes." {
		t.Fatalf("sixth attempt: %d %q", res.StatusCode, msg)
	}
	if res.Header.Get("Retry-After") != "600" {
		t.Errorf("Retry-After = %q, want 600", res.Header.Get("Retry-After"))
	}
	if res := c.get("/images"); res.StatusCode != http.StatusSeeOther {
		t.Fatal("a refused attempt signed in")
	}
	// A JSON client gets 429 with the message.
	req := url.Values{"username": {"alice"}, "password": {testAdminPassword}, "_csrf": {c.csrf}}
	res = c.request(http.MethodPost, "/login", strings.NewReader(req.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
	})
	if body := readAll(t, res.Body); res.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
		t.Errorf("JSON client: %d %s", res.StatusCode, body)
	}
	// Other users are not locked out by alice's failures.
	other := env.anonymous()
	other.getPage("/login")
	if res := other.postForm("/login", url.Values{"username": {"admin"}, "password": {testAdminPassword}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("admin after alice's failures: %d", res.StatusCode)
	}
	// When the oldest failure leaves the window, alice may try again.
	clk.Advance(10 * time.Minute)
	if res, msg := attempt(testAdminPassword); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after the wait: %d %q", res.StatusCode, msg)
	}
}

func TestLoginRateLimitPerAddress(t *testing.T) {
	env := newTestEnv(t)
	env.withClock()
	c := env.anonymous()
	c.getPage("/login")
	for i := 0; i < loginFailsPerAddr; i++ {
		name := "nobody-" + string(rune('a'+i))
		if res := c.postForm("/login", url.Values{"username": {name}, "password": {"x"}}); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, res.StatusCode)
		}
	}
	res := c.postForm("/login", url.Values{"username": {"admin"}, "password": {testAdminPassword}})
	if doc := c.readPage(res); res.StatusCode != http.StatusTooManyRequests || !strings.Contains(doc.Find("#login-error").Text(), "try again in 15 minutes") {
		t.Errorf("after 20 failures from one address: %d %q", res.StatusCode, doc.Find("#login-error").Text())
	}
}

func TestSessionAbsoluteExpiry(t *testing.T) {
	env := newTestEnv(t)
	clk := env.withClock()
	c := env.signIn("alice")
	clk.Advance(11 * time.Hour)
	// Pages renew the cookie (its MaxAge starts again), but not the session.
	if _, status := c.getPage("/images"); status != http.StatusOK {
		t.Fatalf("after 11 h: %d", status)
	}
	clk.Advance(time.Hour)
	res := c.get("/images")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("after 12 h: %d %q, want 303 to /login", res.StatusCode, res.Header.Get("Location"))
	}
	if res := c.json(http.MethodGet, "/api/v1/me/images", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("API after 12 h: %d", res.StatusCode)
	}
}

func TestPasswordChangeEndsEverySession(t *testing.T) {
	env := newTestEnv(t)
	page := env.signIn("alice")
	api := env.signIn("alice")
	htmx := env.signIn("alice")
	token := env.withToken("alice", "read")
	if err := env.store.SetPassword(t.Context(), "alice", "a-different-password"); err != nil {
		t.Fatal(err)
	}
	if res := page.get("/account/tokens"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("page: %d", res.StatusCode)
	}
	if res := api.json(http.MethodGet, "/api/v1/me/images", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with the cookie: %d", res.StatusCode)
	}
	if res := htmx.htmx(http.MethodGet, "/images", nil); res.StatusCode != http.StatusUnauthorized || res.Header.Get("HX-Redirect") == "" {
		t.Errorf("htmx: %d %q", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
	// Whoever had the old password may have made tokens: they are revoked.
	if res := token.json(http.MethodGet, "/api/v1/me/images", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("token after a password change: %d, want 401", res.StatusCode)
	}
}
