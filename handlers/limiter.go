package handlers

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sign-in limits: how many failed sign-ins are allowed within loginWindow,
// per username and per client address, before further attempts are refused
// without even checking the password.
const (
	loginWindow       = 15 * time.Minute
	loginFailsPerUser = 5
	loginFailsPerAddr = 20
	// loginMaxKeys bounds the limiter's memory: past it, keys whose failures
	// have all expired are dropped.
	loginMaxKeys = 10000
)

// wallClock is the real clock: Server.now in production.
func wallClock() time.Time { return time.Now() }

// loginLimiter counts recent failed sign-ins per username and per client
// address, in memory (a restart forgets them, which only helps the
// legitimate user). It is safe for concurrent use. The caller passes the
// current time, so that tests can move the clock.
type loginLimiter struct {
	mu       sync.Mutex
	window   time.Duration
	perUser  int
	perAddr  int
	failures map[string][]time.Time
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{
		window:   loginWindow,
		perUser:  loginFailsPerUser,
		perAddr:  loginFailsPerAddr,
		failures: map[string][]time.Time{},
	}
}

func userKey(username string) string { return "u\x00" + strings.ToLower(strings.TrimSpace(username)) }
func addrKey(addr string) string     { return "a\x00" + addr }

// retryAfter returns how long the caller must wait before the next attempt
// for this username from this address, or 0 when an attempt is allowed now.
func (l *loginLimiter) retryAfter(now time.Time, username, addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	wait := l.waitLocked(now, userKey(username), l.perUser)
	return max(wait, l.waitLocked(now, addrKey(addr), l.perAddr))
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

// failed records a failed sign-in for the username and the address.
func (l *loginLimiter) failed(now time.Time, username, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) >= loginMaxKeys {
		l.sweepLocked(now)
	}
	for key, limit := range map[string]int{userKey(username): l.perUser, addrKey(addr): l.perAddr} {
		fs := append(l.recentLocked(now, key), now)
		if len(fs) > limit {
			// Only the last limit failures matter for the wait.
			fs = fs[len(fs)-limit:]
		}
		l.failures[key] = fs
	}
}

// succeeded forgets the username's failures: its owner knows the password.
// The address keeps its count, so that an attacker who owns one account
// cannot reset the limit of the address they guess others' passwords from.
func (l *loginLimiter) succeeded(username string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, userKey(username))
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
