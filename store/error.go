package store

import (
	"errors"
	"fmt"
)

// Error codes, mapped to HTTP statuses in one place (handlers).
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EFORBIDDEN    = "forbidden"
	EUNAUTHORIZED = "unauthorized"
	// EUPSTREAM is a service imagehub asked on someone's behalf (a
	// registry) that did not answer or refused.
	EUPSTREAM = "upstream"
)

// Error is an error meant to be shown to the person who caused it: a code that
// says what kind of failure it is, a sentence, and for invalid input the reason
// per field so a form can show each one where it belongs.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s: %v", e.Message, e.Fields)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error carrying the reason of every bad field.
func Invalid(fields map[string]string) *Error {
	return &Error{Code: EINVALID, Message: "Some fields are not valid.", Fields: fields}
}

// ErrorCode returns the code of err, or EINTERNAL when err is not an *Error:
// anything else is a fault of ours, not of the caller.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of err; internal errors get a
// generic sentence so that nothing about our insides leaks to a user.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorFields returns the per-field reasons of an EINVALID error, or nil.
func ErrorFields(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}
