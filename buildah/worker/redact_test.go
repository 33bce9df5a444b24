package worker

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"

	"imagehub/buildah/workerspec"
)

func TestRedactingWriter(t *testing.T) {
	const pw = "s3cret/pass word"
	m := workerspec.Mirrors{PipAuth: &workerspec.HostAuth{Host: "pypi.example.com", Username: "u", Password: pw}}
	r := newRedactor(m)
	var out bytes.Buffer
	w := r.Writer(&out)
	basic := base64.StdEncoding.EncodeToString([]byte("u:" + pw))
	text := "Looking in indexes: https://u:" + url.PathEscape(pw) + "@pypi.example.com/simple\n" +
		"auth " + pw + " and " + url.QueryEscape(pw) + "\nAuthorization: Basic " + basic + "\nend " + pw[:4]
	// Byte by byte: a password is never cut in two between writes.
	for i := 0; i < len(text); i++ {
		if _, err := w.Write([]byte{text[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, secret := range []string{pw, url.PathEscape(pw), url.QueryEscape(pw), basic} {
		if strings.Contains(got, secret) {
			t.Errorf("%q is in the log:\n%s", secret, got)
		}
	}
	if !strings.Contains(got, "auth **** and ****\n") || !strings.HasSuffix(got, "end "+pw[:4]) {
		t.Errorf("redacted log:\n%s", got)
	}
	if err := r.Error(errors.New("pip failed: " + pw)); err.Error() != "pip failed: ****" {
		t.Errorf("error = %q", err)
	}
}

func TestRedactingWriterWithoutPasswords(t *testing.T) {
	var out bytes.Buffer
	w := newRedactor(workerspec.Mirrors{PipIndexURL: "https://pypi.example.com/simple"}).Writer(&out)
	w.Write([]byte("partial line, passed on at once"))
	if out.String() != "partial line, passed on at once" {
		t.Errorf("out = %q", out.String())
	}
}
