package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// healthz answers load balancers and the test suite: the process serves.
func (s *Server) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok")
}
