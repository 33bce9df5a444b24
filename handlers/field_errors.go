package handlers

import (
	"strings"
	"unicode"

	"imagehub/store"
)

// fieldErrors holds the reason of each bad field of a request, so that a
// form or an API answer reports every one at once. A field keeps the first
// reason it is given: checks run from the most to the least specific.
type fieldErrors map[string]string

// add gives field its reason, unless it has one already.
func (f fieldErrors) add(field, reason string) {
	if _, ok := f[field]; !ok && reason != "" {
		f[field] = reason
	}
}

// merge adds every reason of m (see add).
func (f fieldErrors) merge(m map[string]string) {
	for field, reason := range m {
		f.add(field, reason)
	}
}

// collect adds the field reasons of err when it is an EINVALID error that
// has some, and then returns nil; any other error is returned as it is, for
// the caller to stop at.
func (f fieldErrors) collect(err error) error {
	fields := store.ErrorFields(err)
	if store.ErrorCode(err) != store.EINVALID || len(fields) == 0 {
		return err
	}
	f.merge(fields)
	return nil
}

// err is nil when no field has a reason, else one EINVALID error carrying
// them all.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return store.Invalid(f)
}

// sentence makes an error text start with a capital and end with a full
// stop, to sit under a form field.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	if !strings.HasSuffix(s, ".") {
		r = append(r, '.')
	}
	return string(r)
}
