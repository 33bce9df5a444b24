package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// listBody is the JSON shape of every list: one page of items and how many
// there are in all.
type listBody[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}

// newList makes a list answer whose items are [] rather than null when empty.
func newList[T any](items []T, total int) listBody[T] {
	if items == nil {
		items = []T{}
	}
	return listBody[T]{Items: items, Total: total}
}

// decodeObject reads a JSON object from the request body into the fields
// named in targets (JSON name → pointer), and returns which names were
// present, so that PATCH changes only those.
//
// The body, which readBody read, must be a JSON object (else 400 with the
// parser's reason), in UTF-8 (else 422 at the fields that are not). A
// field that is neither in targets nor in ignored is refused with 422 and
// "Unknown field." at that name: a typo such as "displayname" would
// otherwise be dropped silently and the request would do something else than
// its author meant. Fields in ignored (read-only ones such as "name" or
// "createdAt") are accepted and ignored, so that an object read with GET can
// be sent back as it is. A value of the wrong JSON type is refused with 422 at
// its field; null sets the zero value.
func decodeObject(c echo.Context, targets map[string]any, ignored ...string) (map[string]bool, error) {
	body := requestBody(c)
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, badRequest("Invalid JSON: " + jsonReason(err))
	}
	if dec.More() {
		return nil, badRequest("Invalid JSON: more than one value in the body.")
	}
	if raw == nil {
		return nil, badRequest("Invalid JSON: the body must be a JSON object.")
	}
	if !utf8.Valid(body) {
		return nil, notUTF8JSON(raw)
	}
	skip := map[string]bool{}
	for _, k := range ignored {
		skip[k] = true
	}
	present := map[string]bool{}
	fields := map[string]string{}
	for _, k := range sortedKeys(raw) {
		target, known := targets[k]
		switch {
		case skip[k]:
		case !known:
			fields[k] = "Unknown field."
		default:
			reflect.ValueOf(target).Elem().SetZero()
			if err := json.Unmarshal(raw[k], target); err != nil {
				fields[k] = "Must be " + jsonKind(target) + "."
				continue
			}
			present[k] = true
		}
	}
	if len(fields) > 0 {
		return nil, store.Invalid(fields)
	}
	return present, nil
}

// notUTF8JSON refuses a body that is not UTF-8, which the JSON parser would
// take with U+FFFD in place of the bad bytes: 422 at the fields whose values
// hold them, or 400 when none does (the bad bytes are in a name).
func notUTF8JSON(raw map[string]json.RawMessage) error {
	fields := fieldErrors{}
	for k, v := range raw {
		if !utf8.Valid(v) {
			fields.add(k, reasonNotUTF8)
		}
	}
	if len(fields) == 0 {
		return badRequest("Invalid JSON: the body is not valid UTF-8 text.")
	}
	return notUTF8(fields)
}

// jsonReason is the parser's reason for bad JSON, without Go type names.
func jsonReason(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty."
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends too early."
	case errors.As(err, &syn):
		return syn.Error() + " (at byte " + strconv.FormatInt(syn.Offset, 10) + ")."
	case errors.As(err, &typ):
		return "the body must be a JSON object."
	}
	return err.Error()
}

// jsonKind names the JSON type a target expects, for an error message.
func jsonKind(target any) string {
	switch target.(type) {
	case *string, *store.ImageType:
		return "a string"
	case *bool:
		return "true or false"
	case *[]string:
		return "a list of strings"
	case *int, *int64:
		return "a whole number"
	case **time.Time:
		return "a time such as 2030-01-31T00:00:00Z, or null"
	}
	return "an object of the documented shape"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pageParams reads ?page= (from 1) and ?perPage= (1 to 100, default 20).
func pageParams(c echo.Context) (offset, limit int, err error) {
	fields := map[string]string{}
	page, perPage := 1, 20
	if v := c.QueryParam("page"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			fields["page"] = "A whole number from 1."
		} else {
			page = n
		}
	}
	if v := c.QueryParam("perPage"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 100 {
			fields["perPage"] = "A whole number from 1 to 100."
		} else {
			perPage = n
		}
	}
	if len(fields) > 0 {
		return 0, 0, store.Invalid(fields)
	}
	return (page - 1) * perPage, perPage, nil
}
