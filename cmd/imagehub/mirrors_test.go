package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"imagehub/store"
)

func TestPackageFlags(t *testing.T) {
	t.Setenv("IMAGEHUB_APT_MIRROR", "http://apt.example.com/debian")
	c, err := parseServeFlags([]string{"--pip-index-url", "https://pypi.example.com/simple", "--conda-channels", "conda-forge,bioconda"})
	if err != nil {
		t.Fatal(err)
	}
	want := store.PackageSettings{PipIndexURL: "https://pypi.example.com/simple", CondaChannels: "conda-forge,bioconda",
		AptMirror: "http://apt.example.com/debian"}
	if c.packages != want {
		t.Errorf("packages = %+v, want %+v", c.packages, want)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pip-index-url", "pypi.example.com"}, "--pip-index-url: "},
		{[]string{"--apt-mirror", "http://127.0.0.1:3142/"}, "--apt-mirror: Builds never reach"},
		{[]string{"--conda-channels", "a b"}, "--conda-channels: "},
		{[]string{"--apt-secret", "No Such"}, "--apt-secret: "},
	} {
		if _, err := parseServeFlags(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseServeFlags(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestPackageFlagsSecrets(t *testing.T) {
	_, st, err := openDataDir(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.CreateSecret(ctx, &store.Secret{Name: "apt", RegistryHost: "apt.example.com", Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	if err := setPackageDefaults(ctx, st, store.PackageSettings{AptMirror: "http://apt.example.com/", AptSecret: "apt"}); err != nil {
		t.Errorf("a fitting secret: %v", err)
	}
	err = setPackageDefaults(ctx, st, store.PackageSettings{AptMirror: "http://other.example.com/", AptSecret: "apt"})
	if err == nil || !strings.Contains(err.Error(), "--apt-secret: ") {
		t.Errorf("a secret for another host: %v, want refused at --apt-secret", err)
	}
	err = setPackageDefaults(ctx, st, store.PackageSettings{PipIndexURL: "http://apt.example.com/simple", PipSecret: "missing"})
	if err == nil || !strings.Contains(err.Error(), "--pip-secret: ") {
		t.Errorf("a missing secret: %v, want refused at --pip-secret", err)
	}
}
