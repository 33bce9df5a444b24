package handlers

import (
	"maps"
	"net/http"
	"sync"

	"github.com/gorilla/sessions"
)

// decodedSessions keeps the values of the session cookies decoded already,
// by the cookie's text: decoding one (HMAC, AES and gob) was a tenth of a
// page's time, and a browser sends the same cookie until it is written
// again. Only a cookie that decoded, so one made with the server's keys,
// is kept; the values are checked at each request as before (the user's
// epoch, and the age of the session: sessionFresh, which ends a session
// sooner than the cookie's own timestamp would).
type decodedSessions struct {
	mu     sync.Mutex
	values map[string]map[any]any
}

// maxDecodedSessions bounds the cookies kept: past it, all are forgotten.
const maxDecodedSessions = 4096

func (d *decodedSessions) get(cookie string) (map[any]any, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.values[cookie]
	return v, ok
}

// put keeps a copy of values, when they are plain values (strings, numbers,
// booleans) that no request can change in place; a session with flashes
// (a list) is not kept.
func (d *decodedSessions) put(cookie string, values map[any]any) {
	for _, v := range values {
		switch v.(type) {
		case string, int64, int, bool:
		default:
			return
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.values == nil || len(d.values) >= maxDecodedSessions {
		d.values = map[string]map[any]any{}
	}
	d.values[cookie] = maps.Clone(values)
}

// decodeSession returns the request's cookie session: a new, empty one
// when the request has none or it does not decode (a cookie made with
// other keys or tampered with: start afresh).
func (s *Server) decodeSession(r *http.Request) *sessions.Session {
	cookie, err := r.Cookie(s.sessionName)
	if err != nil {
		sess, _ := s.cookies.New(r, s.sessionName)
		return sess
	}
	if values, ok := s.decoded.get(cookie.Value); ok {
		// As CookieStore.New makes it.
		sess := sessions.NewSession(s.cookies, s.sessionName)
		opts := *s.cookies.Options
		sess.Options = &opts
		maps.Copy(sess.Values, values)
		return sess
	}
	sess, err := s.cookies.New(r, s.sessionName)
	if err != nil {
		clear(sess.Values)
		return sess
	}
	s.decoded.put(cookie.Value, sess.Values)
	return sess
}
