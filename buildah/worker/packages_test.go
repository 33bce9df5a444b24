package worker

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"imagehub/buildah/recipe"
	"imagehub/buildah/workerspec"
)

func TestCredentialFiles(t *testing.T) {
	a := &workerspec.HostAuth{Host: "mirror.example.com:8443", Username: "builder", Password: "pa:ss@w/rd"}
	m := workerspec.Mirrors{
		PipIndexURL: "https://mirror.example.com:8443/pypi/simple", PipExtraIndexURL: "https://other.example.com/simple", PipAuth: a,
		CondaChannelAlias: "https://mirror.example.com:8443/conda", CondaAuth: a,
		AptMirror: "http://mirror.example.com:8443/apt", AptAuth: a,
	}
	files, err := credentialFiles(m)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		// Only the index on the credential's host; netrc names hosts
		// without their port.
		recipe.SecretPipNetrc: "machine mirror.example.com login builder password pa:ss@w/rd\n",
		recipe.SecretAptAuth:  "machine http://mirror.example.com:8443 login builder password pa:ss@w/rd\n",
		recipe.SecretCondarc:  "channel_alias: \"https://builder:pa%3Ass%40w%2Frd@mirror.example.com:8443/conda\"\n",
	}
	for id, w := range want {
		if files[id] != w {
			t.Errorf("%s = %q, want %q", id, files[id], w)
		}
	}

	// A credential for another host goes nowhere; an alias alone still
	// makes a condarc.
	other := &workerspec.HostAuth{Host: "elsewhere.example.com", Username: "u", Password: "p"}
	files, err = credentialFiles(workerspec.Mirrors{PipIndexURL: m.PipIndexURL, PipAuth: other, AptMirror: m.AptMirror, AptAuth: other,
		CondaChannelAlias: "https://conda.example.com/"})
	if err != nil || len(files) != 1 || files[recipe.SecretCondarc] != "channel_alias: \"https://conda.example.com/\"\n" {
		t.Errorf("files = %q, %v", files, err)
	}

	for _, pw := range []string{"two words", `quo"te`, `back\slash`, "hash#"} {
		bad := &workerspec.HostAuth{Host: "mirror.example.com:8443", Username: "u", Password: pw}
		if _, err := credentialFiles(workerspec.Mirrors{PipIndexURL: m.PipIndexURL, PipAuth: bad}); err == nil {
			t.Errorf("password %q was written to a netrc", pw)
		}
	}
}

func TestMirrorAddrs(t *testing.T) {
	var log bytes.Buffer
	got := mirrorAddrs(context.Background(), []string{
		"http://192.168.7.8/debian", "https://192.168.7.8/simple", "http://[fd34::5]:3142/", "http://127.0.0.1:3142/", "http://192.168.7.8/again",
	}, &log)
	want := []netip.AddrPort{netip.MustParseAddrPort("192.168.7.8:80"), netip.MustParseAddrPort("192.168.7.8:443"), netip.MustParseAddrPort("[fd34::5]:3142")}
	if !slices.Equal(got, want) {
		t.Errorf("mirrorAddrs = %v, want %v", got, want)
	}
	if !strings.Contains(log.String(), "mirror host 127.0.0.1 is 127.0.0.1, which RUN steps never reach") {
		t.Errorf("log = %q", log.String())
	}
}
