package handlers

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// ctxBody is the context key of the request body that readBody read.
const ctxBody = "imagehub.body"

// reasonNotUTF8 is why a field whose text is not UTF-8 is refused: stored,
// its bytes would come back as something else than was sent.
const reasonNotUTF8 = "Not valid UTF-8 text."

// readBody reads the whole body of a state-changing request before the CSRF
// check and the handler see it, so that a body that cannot be read is
// refused, never taken for an empty one. It is the one place where bodies
// are read; the refusals, in order:
//
//   - a Content-Encoding other than identity: 415 (bodies are not
//     decompressed, and a compressed one is not what its type says);
//   - a body over maxBody: 413; one that breaks off: 400;
//   - on the JSON API, a body sent as another type than application/json:
//     415 (decodeObject decodes it, from requestBody);
//   - on a page, a body that is not a form (urlencoded or multipart): 415;
//     a form that does not parse (a bad escape, a multipart body without
//     its closing boundary): 400; a field whose value is not UTF-8: 422 at
//     that field.
func readBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if isSafeMethod(r.Method) {
			return next(c)
		}
		if err := refuseEncoding(c); err != nil {
			return err
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return errBodyTooLarge()
			}
			return badRequest("The request body could not be read: " + err.Error() + ".")
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		c.Set(ctxBody, body)
		mt := mediaType(r)
		if isAPI(c) {
			if len(body) > 0 && mt != "" && mt != echo.MIMEApplicationJSON {
				return unsupportedMedia("Send the body as JSON (Content-Type: application/json).")
			}
			return next(c)
		}
		if len(body) > 0 && mt != echo.MIMEApplicationForm && mt != echo.MIMEMultipartForm {
			return unsupportedMedia("Send the form as application/x-www-form-urlencoded or multipart/form-data.")
		}
		if err := parseForm(r, mt); err != nil {
			return err
		}
		return next(c)
	}
}

// requestBody is the body readBody read (nil for a safe method).
func requestBody(c echo.Context) []byte {
	b, _ := c.Get(ctxBody).([]byte)
	return b
}

// hasBody tells a request with a body from one without (or with blanks only).
func hasBody(c echo.Context) bool {
	return len(bytes.TrimSpace(requestBody(c))) > 0
}

// refuseEncoding refuses a body with a Content-Encoding other than identity,
// and says which one is accepted (Accept-Encoding, RFC 7694).
func refuseEncoding(c echo.Context) error {
	for _, v := range c.Request().Header.Values(echo.HeaderContentEncoding) {
		for _, enc := range strings.Split(v, ",") {
			if enc = strings.ToLower(strings.TrimSpace(enc)); enc != "" && enc != "identity" {
				c.Response().Header().Set(echo.HeaderAcceptEncoding, "identity")
				return unsupportedMedia("Content-Encoding " + strconv.Quote(enc) + " is not accepted: send the body uncompressed.")
			}
		}
	}
	return nil
}

// mediaType is the request's media type without its parameters, "" when the
// request names none. A Content-Type that does not parse is kept as it is,
// to be refused as not the expected type.
func mediaType(r *http.Request) string {
	ct := r.Header.Get(echo.HeaderContentType)
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return ct
}

// parseForm parses a page's form (and the query) into r.Form, refusing a
// form that does not parse or has a field that is not UTF-8. Multipart
// parts stay in memory: the body is at most maxBody.
func parseForm(r *http.Request, mt string) error {
	var err error
	if mt == echo.MIMEMultipartForm {
		err = r.ParseMultipartForm(maxBody)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		return badRequest("The form could not be read: " + err.Error() + ".")
	}
	fields := fieldErrors{}
	for _, k := range sortedKeys(r.Form) {
		if !utf8.ValidString(k) {
			return badRequest("The form could not be read: a field name is not valid UTF-8 text.")
		}
		for _, v := range r.Form[k] {
			if !utf8.ValidString(v) {
				fields.add(k, reasonNotUTF8)
			}
		}
	}
	return notUTF8(fields)
}

// notUTF8 is the 422 of fields that are not UTF-8 (nil when there are
// none); its message names them, for a page that shows no field reasons.
func notUTF8(fields fieldErrors) error {
	if len(fields) == 0 {
		return nil
	}
	return &store.Error{Code: store.EINVALID, Fields: fields,
		Message: "Not valid UTF-8 text in " + strings.Join(sortedKeys(fields), ", ") + "."}
}

// errBodyTooLarge is the refusal of a body over maxBody.
func errBodyTooLarge() error {
	return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
		"The request body is over the limit of "+strconv.Itoa(maxBody>>20)+" MiB.")
}

// unsupportedMedia is a body of a type or encoding we do not read: 415 with
// what to send instead.
func unsupportedMedia(msg string) error {
	return echo.NewHTTPError(http.StatusUnsupportedMediaType, msg)
}
