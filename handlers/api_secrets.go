package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// apiListSecrets lists the pull secrets, without passwords.
func (s *Server) apiListSecrets(c echo.Context) error {
	secrets, err := s.store.ListSecrets(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(secrets, len(secrets)))
}

// apiCreateSecret adds a pull secret and answers 201 with it, without its
// password (write-only).
func (s *Server) apiCreateSecret(c echo.Context) error {
	var sec store.Secret
	_, err := decodeObject(c, map[string]any{
		"name":         &sec.Name,
		"registryHost": &sec.RegistryHost,
		"username":     &sec.Username,
		"password":     &sec.Password,
	}, "createdAt")
	if err != nil {
		return err
	}
	if err := s.store.CreateSecret(c.Request().Context(), &sec); err != nil {
		return err
	}
	s.secretsChanged()
	sec.Password = ""
	return c.JSON(http.StatusCreated, sec)
}
