package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// settingsPage shows the Settings page: the package mirrors that builds
// use, with the flags' values where the page leaves a field empty.
func (s *Server) settingsPage(c echo.Context) error {
	p, err := s.store.PackageSettings(c.Request().Context())
	if err != nil {
		return err
	}
	return s.renderSettings(c, http.StatusOK, views.SettingsProps{Form: p})
}

// saveSettings saves the Settings page; bad fields bring the form back
// (422) with the values kept and the reason at each field. The next build
// uses what is saved.
func (s *Server) saveSettings(c echo.Context) error {
	var p store.PackageSettings
	for key, v := range packageSettingsFields(&p) {
		*v = strings.TrimSpace(c.FormValue(key))
	}
	err := s.store.SavePackageSettings(c.Request().Context(), p)
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderSettings(c, http.StatusUnprocessableEntity, views.SettingsProps{Form: p, Errors: store.ErrorFields(err)})
	} else if err != nil {
		return err
	}
	s.addFlash(c, "Settings saved: the next build uses them.")
	return seeOther(c, "/admin/settings")
}

func (s *Server) renderSettings(c echo.Context, status int, p views.SettingsProps) error {
	secrets, err := s.store.ListSecrets(c.Request().Context())
	if err != nil {
		return err
	}
	p.Secrets, p.Defaults = secrets, s.store.PackageDefaults()
	p.Page = s.page(c, "Settings", views.NavSettings)
	return render(c, status, views.Settings(p))
}

// packageSettingsFields are the fields of the package settings by their
// names in forms and JSON.
func packageSettingsFields(p *store.PackageSettings) map[string]*string {
	return map[string]*string{
		"pipIndexUrl": &p.PipIndexURL, "pipExtraIndexUrl": &p.PipExtraIndexURL, "pipSecret": &p.PipSecret,
		"condaChannels": &p.CondaChannels, "condaChannelAlias": &p.CondaChannelAlias, "condaSecret": &p.CondaSecret,
		"aptMirror": &p.AptMirror, "aptSecret": &p.AptSecret,
	}
}

// packageSettingsBody is the API's view of the package settings: the
// page's own fields, the flags' (defaults) and what the next build uses
// (effective: the page's non-empty fields over the flags').
type packageSettingsBody struct {
	store.PackageSettings
	Defaults  store.PackageSettings `json:"defaults"`
	Effective store.PackageSettings `json:"effective"`
}

// apiGetPackageSettings answers the package settings.
func (s *Server) apiGetPackageSettings(c echo.Context) error {
	return s.packageSettingsAnswer(c)
}

// apiPutPackageSettings replaces the page's package settings (a field left
// out becomes empty, the flag's) and answers them as GET does.
func (s *Server) apiPutPackageSettings(c echo.Context) error {
	var p store.PackageSettings
	targets := map[string]any{}
	for key, v := range packageSettingsFields(&p) {
		targets[key] = v
	}
	if _, err := decodeObject(c, targets, "defaults", "effective"); err != nil {
		return err
	}
	if err := s.store.SavePackageSettings(c.Request().Context(), p); err != nil {
		return err
	}
	return s.packageSettingsAnswer(c)
}

func (s *Server) packageSettingsAnswer(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.store.PackageSettings(ctx)
	if err != nil {
		return err
	}
	defaults := s.store.PackageDefaults()
	return c.JSON(http.StatusOK, packageSettingsBody{PackageSettings: p, Defaults: defaults, Effective: p.Over(defaults)})
}
