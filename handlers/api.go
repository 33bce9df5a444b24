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
// present, so that PATCH changes only those. Every JSON route reads its body
// with it, so that a bad body gets the same answer everywhere.
//
// The body, which readBody read, must be a JSON object (else 400 with the
// parser's reason and where it stopped), in UTF-8 (else 422 at the fields
// that are not). A field that is neither in targets nor in ignored is
// refused with 422 and "Unknown field." at that name: a typo such as
// "displayname" would otherwise be dropped silently and the request would do
// something else than its author meant. Fields in ignored (read-only ones
// such as "name" or "createdAt") are accepted and ignored, so that an object
// read with GET can be sent back as it is. A value of the wrong JSON type is
// refused with 422 at its field, saying the type expected (valueReasons);
// null sets the zero value.
func decodeObject(c echo.Context, targets map[string]any, ignored ...string) (map[string]bool, error) {
	return decodeFields(requestBody(c), targets, ignored...)
}

// decodeFields is decodeObject once the body is read. An object inside the
// body (a recipe, see strictRecipe) is decoded with it too, and its reasons
// are given at "outer.inner".
func decodeFields(body []byte, targets map[string]any, ignored ...string) (map[string]bool, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, badRequest("Invalid JSON: " + jsonReason(err, len(body)))
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
	fields := fieldErrors{}
	for _, k := range sortedKeys(raw) {
		target, known := targets[k]
		switch {
		case skip[k]:
		case !known:
			fields.add(k, "Unknown field.")
		default:
			reflect.ValueOf(target).Elem().SetZero()
			if err := json.Unmarshal(raw[k], target); err != nil {
				fields.merge(valueReasons(k, target, err))
				continue
			}
			present[k] = true
		}
	}
	return present, fields.err()
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

// valueReasons are the reasons, for a client, why the value of the field
// name could not be decoded into target: those of the object inside it at
// "name.field" (strictRecipe reports them), or else the JSON type that
// target takes. The Go error itself, with its Go type names, is not shown.
func valueReasons(name string, target any, err error) map[string]string {
	if inner := store.ErrorFields(err); len(inner) > 0 {
		out := map[string]string{}
		for field, reason := range inner {
			out[name+"."+field] = reason
		}
		return out
	}
	return map[string]string{name: "Must be " + jsonKind(reflect.TypeOf(target).Elem()) + "."}
}

// jsonReason is the parser's reason for bad JSON, with the byte where it
// stopped and without Go type names; size is the body's length.
func jsonReason(err error, size int) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty."
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends too early (at byte " + strconv.Itoa(size) + ")."
	case errors.As(err, &syn):
		return syn.Error() + " (at byte " + strconv.FormatInt(syn.Offset, 10) + ")."
	case errors.As(err, &typ):
		return "the body must be a JSON object."
	}
	return err.Error()
}

// jsonKind names the JSON type that a Go value of type t is decoded from,
// for "Must be …": by its kind, so that a named type (store.Role,
// store.TokenScope) is a string as its kind says.
func jsonKind(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Time]():
		return "a time such as 2030-01-31T00:00:00Z"
	case reflect.TypeFor[store.Toggle]():
		return "true or false"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonKind(t.Elem()) + ", or null"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "a list of strings"
		}
		return "a list"
	}
	return "an object"
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
