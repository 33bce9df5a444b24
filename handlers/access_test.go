package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// TestRequireGroupAdmin checks the access level that group pages will use:
// administrators and the admins of the group in the path pass, its plain
// members and other users do not.
func TestRequireGroupAdmin(t *testing.T) {
	env := newTestEnv(t)
	env.mustCreateGroup("team-a")
	ok := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	guarded := env.server.requireGroupAdmin(ok)
	cases := []struct {
		name string
		user *store.User
		want int
	}{
		{"administrator", &store.User{Username: "root", Admin: true}, http.StatusNoContent},
		{"group admin", &store.User{Username: "g", Groups: []store.Membership{{Group: "team-a", Role: store.RoleAdmin}}}, http.StatusNoContent},
		{"member", &store.User{Username: "m", Groups: []store.Membership{{Group: "team-a", Role: store.RoleMember}}}, http.StatusForbidden},
		{"admin of another group", &store.User{Username: "o", Groups: []store.Membership{{Group: "team-b", Role: store.RoleAdmin}}}, http.StatusForbidden},
		{"anonymous", nil, http.StatusUnauthorized},
	}
	e := echo.New()
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		c := e.NewContext(httptest.NewRequest(http.MethodGet, "/api/v1/groups/team-a/images", nil), rec)
		c.SetParamNames("group")
		c.SetParamValues("team-a")
		if tc.user != nil {
			c.Set(ctxIdentity, &identity{User: tc.user})
		}
		err := guarded(c)
		got := rec.Code
		if err != nil {
			got, _, _ = describe(err)
		}
		if got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
