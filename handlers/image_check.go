package handlers

import (
	"context"
	"fmt"
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

// checkUnreachable is what someone else than an administrator is told when
// a check fails: the remote's own text could tell a group admin what
// answers at an address inside the network, so it goes to the log only.
const checkUnreachable = "The registry could not be reached or refused the request."

// checkImage asks the registry about a URL of the image form or page (the
// field named by "which": url or urlForGpu), with the chosen pull secret
// when it is for the URL's registry host. The answer is a fragment: digest,
// platforms and size, or why the check failed: the registry's own error for
// an administrator, a generic sentence for anyone else. A failed check is
// shown, not refused: saving never depends on it. Where the server may
// connect is the inspect function's business (remote.Policy, in serve).
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
		// The secret of built images (pull-only on the embedded registry)
		// checks them for anyone; its host is checked below like any other.
		if secret != s.pushSecret && !mayUsePullSecret(currentUser(c), secret, "") {
			return render(c, http.StatusUnprocessableEntity, views.CheckResult(views.CheckProps{Reference: ref,
				Error: "Only an administrator may check with a pull secret: it holds their registry credentials."}))
		}
		host, user, pass, err := s.store.SecretAuth(ctx, secret)
		if store.ErrorCode(err) == store.ENOTFOUND {
			return render(c, http.StatusUnprocessableEntity, views.CheckResult(views.CheckProps{Reference: ref, Error: store.ErrorMessage(err)}))
		} else if err != nil {
			return err
		}
		if !remote.SameHost(host, remote.Host(ref)) {
			return render(c, http.StatusUnprocessableEntity, views.CheckResult(views.CheckProps{Reference: ref,
				Error: fmt.Sprintf("Secret %q is for %s, and its credentials go nowhere else; this image is on %s.", secret, host, remote.Host(ref))}))
		}
		auth = &remote.Auth{Username: user, Password: pass}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	info, err := s.inspect(ctx, ref, auth, s.insecure[remote.Host(ref)])
	if err != nil {
		msg := sentence(err.Error())
		if u := currentUser(c); u == nil || !u.Admin {
			name := ""
			if u != nil {
				name = u.Username
			}
			s.log.Warn("check failed", "user", name, "reference", ref, "err", err)
			msg = checkUnreachable
		}
		return render(c, http.StatusOK, views.CheckResult(views.CheckProps{Reference: ref, Error: msg}))
	}
	return render(c, http.StatusOK, views.CheckResult(views.CheckProps{
		Reference: ref, Digest: info.Digest, MediaType: info.MediaType,
		Platforms: info.Platforms, Size: info.Size, User: info.User,
	}))
}
