package worker

import (
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"strings"
	"sync"

	"imagehub/buildah/workerspec"
)

// This file keeps the mirrors' passwords out of a build's log and failure
// reason, whatever a package manager prints: the worker never writes them,
// but pip, apt and conda see them, and an error message of theirs could
// echo a URL or a header.

// redactedMark replaces a password in the log.
const redactedMark = "****"

// redactor replaces every form a password takes in text: as written, as
// escaped in a URL, and inside the base64 of a basic-auth header.
type redactor struct {
	replacer *strings.Replacer
	forms    []string
}

// newRedactor returns nil when the mirrors carry no password.
func newRedactor(m workerspec.Mirrors) *redactor {
	var forms, pairs []string
	for _, a := range []*workerspec.HostAuth{m.PipAuth, m.CondaAuth, m.AptAuth} {
		if a == nil || a.Password == "" {
			continue
		}
		forms = append(forms, a.Password, url.QueryEscape(a.Password), url.PathEscape(a.Password),
			url.UserPassword(a.Username, a.Password).String(),
			base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	}
	if len(forms) == 0 {
		return nil
	}
	for _, f := range forms {
		pairs = append(pairs, f, redactedMark)
	}
	return &redactor{replacer: strings.NewReplacer(pairs...), forms: forms}
}

// String redacts s; a nil redactor leaves it alone.
func (r *redactor) String(s string) string {
	if r == nil {
		return s
	}
	return r.replacer.Replace(s)
}

// Error redacts an error's message.
func (r *redactor) Error(err error) error {
	if r == nil || err == nil {
		return err
	}
	if msg := r.String(err.Error()); msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

// partial is the length of the longest end of s that is the beginning of
// a password's form: what may be completed by the next write.
func (r *redactor) partial(s string) int {
	n := 0
	for _, f := range r.forms {
		for l := min(len(f)-1, len(s)); l > n; l-- {
			if strings.HasSuffix(s, f[:l]) {
				n = l
				break
			}
		}
	}
	return n
}

// Writer redacts what goes through it to w; call Flush at the end. With a
// nil redactor it passes everything through as it comes.
func (r *redactor) Writer(w io.Writer) *redactingWriter {
	return &redactingWriter{r: r, w: w}
}

// redactingWriter writes everything at once, but for an end that may be the
// beginning of a password, which it holds back until the next write says.
type redactingWriter struct {
	r       *redactor
	w       io.Writer
	mu      sync.Mutex
	pending string
}

func (rw *redactingWriter) Write(p []byte) (int, error) {
	if rw.r == nil {
		return rw.w.Write(p)
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	text := rw.r.String(rw.pending + string(p))
	keep := rw.r.partial(text)
	rw.pending = text[len(text)-keep:]
	if _, err := io.WriteString(rw.w, text[:len(text)-keep]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is held back.
func (rw *redactingWriter) Flush() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.pending == "" {
		return nil
	}
	_, err := io.WriteString(rw.w, rw.pending)
	rw.pending = ""
	return err
}
