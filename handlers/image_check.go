package handlers

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"imagehub/buildah/remote"
	"imagehub/store"
	"imagehub/views"
)

// checkTimeout bounds a Check, so that an unreachable registry answers soon.
const checkTimeout = 20 * time.Second

// checkImage asks the registry about a URL of the image form or page (the
// field named by "which": url or urlForGpu), with the chosen pull secret. The
// answer is a fragment: digest, platforms and size, or the registry's own
// error. A failed check is shown, not refused: saving never depends on it.
func (s *Server) checkImage(c echo.Context) error {
	field := "url"
	if c.FormValue("which") == "urlForGpu" {
		field = "urlForGpu"
	}
	raw := strings.TrimSpace(c.FormValue(field))
	if raw == "" {
		return render(c, http.StatusUnprocessableEntity, views.CheckResult(views.CheckProps{Error: "Enter a URL first."}))
	}
	ref, err := s.normalize(raw)
	if err != nil {
		return render(c, http.StatusUnprocessableEntity, views.CheckResult(views.CheckProps{Error: sentence(err.Error())}))
	}
	ctx := c.Request().Context()
	var auth *remote.Auth
	if secret := c.FormValue("pullSecret"); secret != "" && c.FormValue("usePullSecret") != "" {
		if !mayUsePullSecret(currentUser(c), secret, "") {
			return render(c, http.StatusUnprocessableEntity, views.CheckResult(views.CheckProps{Reference: ref,
				Error: "Only an administrator may check with a pull secret: it holds their registry credentials."}))
		}
		_, user, pass, err := s.store.SecretAuth(ctx, secret)
		if store.ErrorCode(err) == store.ENOTFOUND {
			return render(c, http.StatusUnprocessableEntity, views.CheckResult(views.CheckProps{Reference: ref, Error: store.ErrorMessage(err)}))
		} else if err != nil {
			return err
		}
		auth = &remote.Auth{Username: user, Password: pass}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	info, err := s.inspect(ctx, ref, auth, s.insecure[remote.Host(ref)])
	if err != nil {
		return render(c, http.StatusOK, views.CheckResult(views.CheckProps{Reference: ref, Error: sentence(err.Error())}))
	}
	return render(c, http.StatusOK, views.CheckResult(views.CheckProps{
		Reference: ref, Digest: info.Digest, MediaType: info.MediaType,
		Platforms: info.Platforms, Size: info.Size, User: info.User,
	}))
}
