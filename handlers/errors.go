package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"syscall"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// statusOf maps a store error code to an HTTP status. It is the only place
// where that mapping lives.
func statusOf(code string) int {
	switch code {
	case store.EINVALID:
		return http.StatusUnprocessableEntity
	case store.ENOTFOUND:
		return http.StatusNotFound
	case store.ECONFLICT:
		return http.StatusConflict
	case store.EFORBIDDEN:
		return http.StatusForbidden
	case store.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case store.EUPSTREAM:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

// describe turns any error into the status, message and field reasons a
// client may see. Errors that are not ours to explain (not a *store.Error,
// not an echo.HTTPError below 500) become a generic internal error.
func describe(err error) (int, string, map[string]string) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" {
			msg = m
		}
		switch {
		case he.Code >= 500:
			return he.Code, "Internal error.", nil
		case he.Code == http.StatusNotFound:
			msg = "Page not found."
		case he.Code == http.StatusMethodNotAllowed:
			msg = "This method is not allowed here."
		}
		return he.Code, msg, nil
	}
	code := store.ErrorCode(err)
	return statusOf(code), store.ErrorMessage(err), store.ErrorFields(err)
}

// badRequest is a request we cannot read at all (malformed JSON, a form that
// does not parse): 400 with the reason.
func badRequest(msg string) error { return echo.NewHTTPError(http.StatusBadRequest, msg) }

// forbidden is a signed-in caller asking for something they may not do.
func forbidden(msg string) error { return store.Errorf(store.EFORBIDDEN, "%s", msg) }

// StatusClientClosed is the status recorded (in the request log and the
// metrics) for a request whose client went away before its answer: nginx's
// 499 "client closed request". Nobody receives it.
const StatusClientClosed = 499

// clientGone reports whether err says that the request's client went away:
// the request's context was cancelled, or the connection was closed under
// the answer.
func clientGone(err error, c echo.Context) bool {
	return (errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// handleError is echo's error handler: JSON for the API, a fragment for htmx
// requests (shown in the page's message area), a friendly page otherwise.
// Internal errors are logged and answered with a generic sentence. A client
// that went away is answered nothing: it is no error of the server's.
func (s *Server) handleError(err error, c echo.Context) {
	if clientGone(err, c) {
		if !c.Response().Committed {
			c.Response().Status = StatusClientClosed
		}
		return
	}
	status, msg, fields := describe(err)
	if status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if c.Response().Committed {
		return
	}
	var werr error
	switch {
	case c.Request().Method == http.MethodHead:
		werr = c.NoContent(status)
	case wantsJSON(c):
		werr = c.JSON(status, errorBody{Error: msg, Fields: fields})
	case isHTMX(c):
		werr = render(c, status, views.ErrorFragment(msg))
	default:
		page := s.page(c, "Error", "")
		werr = render(c, status, views.ErrorPage(views.ErrorProps{Page: page, Status: status, Message: msg}))
	}
	if werr != nil && !clientGone(werr, c) {
		s.log.Error("writing an error answer", "err", werr)
	}
}

// wantsJSON tells API requests (and clients that ask for JSON) from pages.
func wantsJSON(c echo.Context) bool {
	if isAPI(c) {
		return true
	}
	accept := c.Request().Header.Get(echo.HeaderAccept)
	return strings.HasPrefix(accept, echo.MIMEApplicationJSON)
}

// isAPI reports whether the request is for a machine: the JSON API or the
// metrics. Such requests get errors in JSON (an anonymous one 401, not the
// sign-in page) and never a page.
func isAPI(c echo.Context) bool {
	p := c.Request().URL.Path
	return strings.HasPrefix(p, "/api/") || p == metricsPath
}

// isHTMX reports whether htmx made the request (and expects a fragment). A
// history-restore request wants the whole page.
func isHTMX(c echo.Context) bool {
	h := c.Request().Header
	return h.Get("HX-Request") == "true" && h.Get("HX-History-Restore-Request") != "true"
}
