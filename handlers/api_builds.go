package handlers

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// recipeTargets maps a recipe's JSON field names onto r.
func recipeTargets(r *store.Recipe) map[string]any {
	return map[string]any{
		"baseImage":  &r.BaseImage,
		"pullSecret": &r.PullSecret,
		"apt":        &r.Apt,
		"conda":      &r.Conda,
		"pip":        &r.Pip,
		"smokeTest":  &r.SmokeTest,
	}
}

// apiRebuild starts a new build of a custom image: from the recipe in the
// body when there is one (it becomes the image's recipe), else from the
// image's current recipe. 202 with the queued build.
func (s *Server) apiRebuild(c echo.Context) error {
	var recipe *store.Recipe
	if hasBody(c) {
		recipe = new(store.Recipe)
		if _, err := decodeObject(c, recipeTargets(recipe)); err != nil {
			return err
		}
	}
	b, err := s.rebuild(c, c.Param("name"), recipe, nil)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, s.withWaiting(b)[0])
}

// apiImageBuilds lists an image's builds, newest first.
func (s *Server) apiImageBuilds(c echo.Context) error {
	bs, err := s.store.ListBuilds(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(s.withWaiting(bs...), len(bs)))
}

// buildParam reads the :id of a build route; a malformed id is a missing build.
func buildParam(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, store.Errorf(store.ENOTFOUND, "Build %q not found.", c.Param("id"))
	}
	return id, nil
}

// apiGetBuild answers one build.
func (s *Server) apiGetBuild(c echo.Context) error {
	id, err := buildParam(c)
	if err != nil {
		return err
	}
	b, err := s.store.FindBuild(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.withWaiting(b)[0])
}

// apiCancelBuild cancels a queued or running build: 200 with the build as
// it is now, 409 when it has already finished.
func (s *Server) apiCancelBuild(c echo.Context) error {
	id, err := buildParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.cancelBuild(ctx, id); err != nil {
		return err
	}
	b, err := s.store.FindBuild(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

// apiBuildLog answers a build's log: plain text, or Server-Sent Events that
// follow it live when the client accepts text/event-stream. Live streams are
// bounded per build and per user (log_viewers.go).
func (s *Server) apiBuildLog(c echo.Context) error {
	id, err := buildParam(c)
	if err != nil {
		return err
	}
	// Subscribing to an unknown build would wait for lines forever, and so
	// would subscribing to a build whose log was deleted.
	b, err := s.store.FindBuild(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if b.PrunedAt != nil {
		return store.Errorf(store.ENOTFOUND, "The log of build %d was deleted: imagehub keeps the logs of the newest builds of each image only (--keep-builds).", id)
	}
	if wantsEventStream(c.Request()) {
		release, err := s.viewers.acquire(id, currentUser(c).Username)
		if err != nil {
			return err
		}
		defer release()
		return StreamLog(c.Response(), c.Request(), s.logs, id, DefaultPing)
	}
	text, err := s.logs.Text(id)
	if err != nil {
		return err
	}
	defer text.Close()
	if c.QueryParam("download") != "" {
		c.Response().Header().Set("Content-Disposition", "attachment; filename=build-"+strconv.FormatInt(id, 10)+".log")
	}
	return c.Stream(http.StatusOK, "text/plain; charset=utf-8", text)
}

// wantsEventStream reports whether the Accept header asks for SSE.
func wantsEventStream(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}
