package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// secretsPage lists the pull secrets (never their passwords) with the add form.
func (s *Server) secretsPage(c echo.Context) error {
	return s.renderSecrets(c, http.StatusOK, views.SecretsProps{})
}

// createSecret adds a pull secret from the form; bad fields bring the form
// back (422) with the values kept, except the password.
func (s *Server) createSecret(c echo.Context) error {
	sec := &store.Secret{
		Name:         c.FormValue("name"),
		RegistryHost: c.FormValue("registryHost"),
		Username:     c.FormValue("username"),
		Password:     c.FormValue("password"),
	}
	err := s.store.CreateSecret(c.Request().Context(), sec)
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderSecrets(c, http.StatusUnprocessableEntity, views.SecretsProps{
			Form:   views.SecretValues{Name: sec.Name, RegistryHost: sec.RegistryHost, Username: sec.Username},
			Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	s.secretsChanged()
	s.addFlash(c, "Pull secret "+sec.Name+" added.")
	return seeOther(c, "/admin/secrets")
}

// deleteSecret deletes a pull secret (see deleted): from the list and the
// API. A secret still used by an image is refused with 409 and says so.
func (s *Server) deleteSecret(c echo.Context) error {
	name := c.Param("name")
	if err := s.store.DeleteSecret(c.Request().Context(), name); err != nil {
		return err
	}
	s.secretsChanged()
	return s.deleted(c, "Pull secret "+name+" deleted.", "/admin/secrets")
}

func (s *Server) renderSecrets(c echo.Context, status int, p views.SecretsProps) error {
	secrets, err := s.store.ListSecrets(c.Request().Context())
	if err != nil {
		return err
	}
	p.Secrets = secrets
	p.Page = s.page(c, "Pull secrets", views.NavSecrets)
	return render(c, status, views.Secrets(p))
}
