package handlers

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
)

// Defaults of the bounds on live log viewers (Config.LogViewersPerBuild and
// LogViewersPerUser). Each stream holds a goroutine, a connection and a
// buffer of up to buildlog.DefaultBufferBytes, so nobody may open them
// without end; a browser tab holds one.
const (
	DefaultLogViewersPerBuild = 20
	DefaultLogViewersPerUser  = 10
)

// logViewers counts the live log streams open now, per build and per user,
// and refuses one past either bound. It is safe for concurrent use.
type logViewers struct {
	perBuild, perUser int

	mu     sync.Mutex
	builds map[int64]int
	users  map[string]int
	open   int // streams in all
}

func newLogViewers(perBuild, perUser int) *logViewers {
	if perBuild <= 0 {
		perBuild = DefaultLogViewersPerBuild
	}
	if perUser <= 0 {
		perUser = DefaultLogViewersPerUser
	}
	return &logViewers{perBuild: perBuild, perUser: perUser, builds: map[int64]int{}, users: map[string]int{}}
}

// acquire counts a new stream of build's log for user, or refuses it with
// 429 and the reason. The caller calls release when the stream ends.
func (v *logViewers) acquire(build int64, user string) (release func(), err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.users[user] >= v.perUser:
		return nil, echo.NewHTTPError(http.StatusTooManyRequests, fmt.Sprintf(
			"You are following %d build logs already, the most one user may; close one first.", v.users[user]))
	case v.builds[build] >= v.perBuild:
		return nil, echo.NewHTTPError(http.StatusTooManyRequests, fmt.Sprintf(
			"Build %d's log has %d viewers already, the most one build may have; try again later.", build, v.builds[build]))
	}
	v.builds[build]++
	v.users[user]++
	v.open++
	var once sync.Once
	return func() { once.Do(func() { v.release(build, user) }) }, nil
}

func (v *logViewers) release(build int64, user string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.builds[build]--; v.builds[build] <= 0 {
		delete(v.builds, build)
	}
	if v.users[user]--; v.users[user] <= 0 {
		delete(v.users, user)
	}
	v.open--
}

// count is the number of live log streams open now.
func (v *logViewers) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.open
}

// LogViewers is the number of live log streams open now (a gauge of the
// metrics).
func (s *Server) LogViewers() int { return s.viewers.count() }
