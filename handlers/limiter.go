package handlers

import (
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sign-in limits: how many failed sign-ins are allowed within loginWindow
// for one username from one client address, and from one address whatever
// the username, before further attempts are refused without even checking
// the password.
//
// There is no limit per username alone: it would let anyone lock a user
// (admin, say) out by failing to sign in as them from anywhere. Failures
// from one address hold back that address only.
const (
	loginWindow           = 15 * time.Minute
	loginFailsPerUserAddr = 5
	loginFailsPerAddr     = 20
	// loginMaxKeys bounds the limiter's memory: past it, keys whose failures
	// have all expired are dropped.
	loginMaxKeys = 10000
)

// wallClock is the real clock: Server.now in production.
func wallClock() time.Time { return time.Now() }

// loginLimiter counts recent sign-in attempts per (username, client address)
// and per client address, in memory (a restart forgets them, which only
// helps the legitimate user). An attempt is counted when it begins, before
// the password is checked, so that parallel attempts cannot all pass the
// check before any of them fails; one that turns out right is taken back.
// It is safe for concurrent use. The caller passes the current time, so
// that tests can move the clock.
type loginLimiter struct {
	mu          sync.Mutex
	window      time.Duration
	perUserAddr int
	perAddr     int
	// failures holds, per key, the times of the attempts that failed or are
	// being checked, oldest first.
	failures map[string][]time.Time
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{
		window:      loginWindow,
		perUserAddr: loginFailsPerUserAddr,
		perAddr:     loginFailsPerAddr,
		failures:    map[string][]time.Time{},
	}
}

// clientKey is the part of a client address that the limits count: the
// address itself, or for IPv6 its /64, which one client commonly holds whole.
func clientKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if ip = ip.Unmap(); ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func userAddrKey(username, addr string) string {
	return "u\x00" + strings.ToLower(strings.TrimSpace(username)) + "\x00" + clientKey(addr)
}

func addrKey(addr string) string { return "a\x00" + clientKey(addr) }

// loginAttempt is one sign-in attempt, counted as a failure until it is
// known to be otherwise.
type loginAttempt struct {
	l    *loginLimiter
	at   time.Time
	keys [2]string
}

// begin counts an attempt to sign in as username from addr, before its
// password is checked. It returns the attempt, or, when the limits are
// reached, nil and how long the caller must wait.
func (l *loginLimiter) begin(now time.Time, username, addr string) (*loginAttempt, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := &loginAttempt{l: l, at: now, keys: [2]string{userAddrKey(username, addr), addrKey(addr)}}
	limits := [2]int{l.perUserAddr, l.perAddr}
	wait := max(l.waitLocked(now, a.keys[0], limits[0]), l.waitLocked(now, a.keys[1], limits[1]))
	if wait > 0 {
		return nil, wait
	}
	if len(l.failures) >= loginMaxKeys {
		l.sweepLocked(now)
	}
	for i, key := range a.keys {
		fs := append(l.recentLocked(now, key), now)
		if len(fs) > limits[i] {
			// Only the last limit failures matter for the wait.
			fs = fs[len(fs)-limits[i]:]
		}
		l.failures[key] = fs
	}
	return a, 0
}

// succeeded records that the attempt's password was right: the username's
// failures from this address are forgotten (its owner knows the password)
// and the attempt no longer counts for the address. The address keeps its
// other failures, so that an attacker who owns one account cannot reset the
// limit of the address they guess others' passwords from.
func (a *loginAttempt) succeeded() {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	delete(a.l.failures, a.keys[0])
	a.l.forgetLocked(a.keys[1], a.at)
}

// abandoned takes back an attempt whose password could not be checked (the
// database failed, say): it counts neither way.
func (a *loginAttempt) abandoned() {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	for _, key := range a.keys {
		a.l.forgetLocked(key, a.at)
	}
}

// forgetLocked removes one attempt made at t from key's count.
func (l *loginLimiter) forgetLocked(key string, t time.Time) {
	fs := l.failures[key]
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Equal(t) {
			fs = append(fs[:i:i], fs[i+1:]...)
			break
		}
	}
	if len(fs) == 0 {
		delete(l.failures, key)
	} else {
		l.failures[key] = fs
	}
}

// waitLocked is how long until key has fewer than limit failures in the window.
func (l *loginLimiter) waitLocked(now time.Time, key string, limit int) time.Duration {
	fs := l.recentLocked(now, key)
	if len(fs) < limit {
		return 0
	}
	// The attempt becomes possible when enough of the oldest failures leave
	// the window to bring the count below the limit.
	return fs[len(fs)-limit].Add(l.window).Sub(now)
}

// recentLocked drops key's failures older than the window and returns the rest.
func (l *loginLimiter) recentLocked(now time.Time, key string) []time.Time {
	fs := l.failures[key]
	i := 0
	for i < len(fs) && !fs[i].Add(l.window).After(now) {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(l.failures, key)
	} else {
		l.failures[key] = fs
	}
	return fs
}

// sweepLocked drops every key whose failures have all left the window.
func (l *loginLimiter) sweepLocked(now time.Time) {
	for key := range l.failures {
		l.recentLocked(now, key)
	}
}

// tooManyMessage is what a refused sign-in is told.
func tooManyMessage(wait time.Duration) string {
	minutes := int((wait + time.Minute - 1) / time.Minute)
	if minutes <= 1 {
		return "Too many failed sign-ins; try again in 1 minute."
	}
	return "Too many failed sign-ins; try again in " + strconv.Itoa(minutes) + " minutes."
}
