package store_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"imagehub/store"
)

func TestPackageSettingsValidate(t *testing.T) {
	ok := []store.PackageSettings{
		{},
		{PipIndexURL: "https://pypi.example.com/simple/", PipExtraIndexURL: "http://10.1.2.3:8080/extra/simple", PipSecret: "pypi"},
		{CondaChannels: "conda-forge, bioconda,pkgs/main", CondaChannelAlias: "https://conda.example.com/", CondaSecret: "conda"},
		{CondaChannels: "https://conda.example.com/conda-forge"},
		{AptMirror: "http://apt.example.com:3142/mirror%2Fdebian", AptSecret: "apt.mirror"},
	}
	for _, p := range ok {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", p, err)
		}
	}
	bad := []struct {
		p     store.PackageSettings
		field string
	}{
		{store.PackageSettings{PipIndexURL: "pypi.example.com/simple"}, "pipIndexUrl"},
		{store.PackageSettings{PipIndexURL: "ftp://pypi.example.com/simple"}, "pipIndexUrl"},
		{store.PackageSettings{PipIndexURL: "https://user:pw@pypi.example.com/simple"}, "pipIndexUrl"},
		{store.PackageSettings{PipExtraIndexURL: "https://pypi.example.com/simple?x=1"}, "pipExtraIndexUrl"},
		{store.PackageSettings{PipExtraIndexURL: "https://pypi.example.com/simple#x"}, "pipExtraIndexUrl"},
		{store.PackageSettings{PipExtraIndexURL: "https://pypi.example.com/$(id)"}, "pipExtraIndexUrl"},
		{store.PackageSettings{PipExtraIndexURL: "https://pypi.example.com/a b"}, "pipExtraIndexUrl"},
		{store.PackageSettings{AptMirror: "http://127.0.0.1:3142/debian"}, "aptMirror"},
		{store.PackageSettings{AptMirror: "http://localhost/debian"}, "aptMirror"},
		{store.PackageSettings{AptMirror: "http://169.254.169.254/"}, "aptMirror"},
		{store.PackageSettings{AptMirror: "http://[::1]:3142/"}, "aptMirror"},
		{store.PackageSettings{AptMirror: "http://a/&x"}, "aptMirror"},
		{store.PackageSettings{AptMirror: "http://mirror.example:99999/debian"}, "aptMirror"},
		{store.PackageSettings{PipIndexURL: "https://pypi.example.com:0/simple"}, "pipIndexUrl"},
		{store.PackageSettings{CondaChannelAlias: "https://conda.example.com/'"}, "condaChannelAlias"},
		{store.PackageSettings{CondaChannels: "conda-forge bioconda"}, "condaChannels"},
		{store.PackageSettings{CondaChannels: "-c,conda-forge"}, "condaChannels"},
		{store.PackageSettings{CondaChannels: "https://u:p@conda.example.com/x"}, "condaChannels"},
		{store.PackageSettings{CondaChannels: strings.Repeat("a,", 21)}, "condaChannels"},
		{store.PackageSettings{PipSecret: "Not A Name"}, "pipSecret"},
		{store.PackageSettings{AptSecret: "../x"}, "aptSecret"},
	}
	for _, tc := range bad {
		err := tc.p.Validate()
		if store.ErrorCode(err) != store.EINVALID || store.ErrorFields(err)[tc.field] == "" {
			t.Errorf("Validate(%+v) = %v, want a reason at %s", tc.p, err, tc.field)
		}
	}
}

func TestPackageSettingsPageOverFlags(t *testing.T) {
	s, ctx := open(t), context.Background()
	flags := store.PackageSettings{PipIndexURL: "https://flag.example.com/simple", AptMirror: "http://apt.flag.example.com/"}
	s.SetPackageDefaults(flags)
	if got, err := s.EffectivePackageSettings(ctx); err != nil || got != flags {
		t.Fatalf("with nothing saved the flags decide: %+v, %v", got, err)
	}
	page := store.PackageSettings{PipIndexURL: "https://page.example.com/simple", CondaChannels: "conda-forge"}
	mustNoErr(t, s.SavePackageSettings(ctx, page))
	if got, err := s.PackageSettings(ctx); err != nil || got != page {
		t.Errorf("saved %+v, read back %+v (%v)", page, got, err)
	}
	want := store.PackageSettings{PipIndexURL: "https://page.example.com/simple", CondaChannels: "conda-forge", AptMirror: "http://apt.flag.example.com/"}
	if got, _ := s.EffectivePackageSettings(ctx); got != want {
		t.Errorf("effective = %+v, want the page's fields over the flags': %+v", got, want)
	}
	if got := want.Channels(); !reflect.DeepEqual(got, []string{"conda-forge"}) {
		t.Errorf("Channels() = %q", got)
	}
	// Emptying a field on the page gives it back to the flag.
	mustNoErr(t, s.SavePackageSettings(ctx, store.PackageSettings{}))
	if got, _ := s.EffectivePackageSettings(ctx); got != flags {
		t.Errorf("after clearing the page: %+v, want the flags' %+v", got, flags)
	}
}

func TestPackageSettingsSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagehub.db")
	s, err := store.Open(path, make([]byte, 32))
	mustNoErr(t, err)
	defer func() { s.Close() }()
	ctx := context.Background()
	mustNoErr(t, s.CreateSecret(ctx, &store.Secret{Name: "pypi", RegistryHost: "10.1.2.3:8080", Username: "u", Password: "p"}))
	mustNoErr(t, s.CreateSecret(ctx, &store.Secret{Name: "apt", RegistryHost: "apt.example.com", Username: "u", Password: "p"}))
	// A registry password may hold anything; pip's and APT's netrc files
	// cannot carry a space, a quote, a backslash or "#". conda's URL can.
	mustNoErr(t, s.CreateSecret(ctx, &store.Secret{Name: "spaced", RegistryHost: "10.1.2.3:8080", Username: "u", Password: "two words"}))
	mustNoErr(t, s.CreateSecret(ctx, &store.Secret{Name: "hashed", RegistryHost: "apt.example.com", Username: "u", Password: `p#ss\"`}))
	mustNoErr(t, s.CreateSecret(ctx, &store.Secret{Name: "conda", RegistryHost: "conda.example.com", Username: "u", Password: "two words #"}))
	mustNoErr(t, s.SavePackageSettings(ctx, store.PackageSettings{CondaChannelAlias: "https://conda.example.com/", CondaSecret: "conda"}))
	mustNoErr(t, s.SavePackageSettings(ctx, store.PackageSettings{}))

	for _, tc := range []struct {
		p     store.PackageSettings
		field string
	}{
		{store.PackageSettings{PipIndexURL: "http://10.1.2.3:8080/simple", PipSecret: "missing"}, "pipSecret"},
		// The secret's host and port must be a URL's.
		{store.PackageSettings{PipIndexURL: "http://10.1.2.3/simple", PipSecret: "pypi"}, "pipSecret"},
		{store.PackageSettings{PipSecret: "pypi"}, "pipSecret"},
		{store.PackageSettings{AptMirror: "http://other.example.com/", AptSecret: "apt"}, "aptSecret"},
		{store.PackageSettings{CondaChannels: "http://apt.example.com/x", CondaSecret: "apt"}, "condaSecret"},
		{store.PackageSettings{PipIndexURL: "http://10.1.2.3:8080/simple", PipSecret: "spaced"}, "pipSecret"},
		{store.PackageSettings{AptMirror: "http://apt.example.com/debian", AptSecret: "hashed"}, "aptSecret"},
	} {
		err := s.SavePackageSettings(ctx, tc.p)
		if store.ErrorCode(err) != store.EINVALID || store.ErrorFields(err)[tc.field] == "" {
			t.Errorf("SavePackageSettings(%+v) = %v, want a reason at %s", tc.p, err, tc.field)
		}
	}
	err = s.SavePackageSettings(ctx, store.PackageSettings{PipIndexURL: "http://10.1.2.3:8080/simple", PipSecret: "spaced"})
	if r := store.ErrorFields(err)["pipSecret"]; !strings.Contains(r, `Secret "spaced"`) || !strings.Contains(r, "netrc") {
		t.Errorf("the pip secret with a space: %q, want it named and netrc said", r)
	}
	if got, _ := s.PackageSettings(ctx); got != (store.PackageSettings{}) {
		t.Errorf("a refused save wrote %+v", got)
	}

	good := store.PackageSettings{PipExtraIndexURL: "http://10.1.2.3:8080/simple", PipSecret: "pypi"}
	mustNoErr(t, s.SavePackageSettings(ctx, good))
	if err := s.DeleteSecret(ctx, "pypi"); store.ErrorCode(err) != store.ECONFLICT || !strings.Contains(err.Error(), "Settings page") {
		t.Errorf("deleting the page's pip secret = %v, want a conflict naming the Settings page", err)
	}
	// A flag's URL makes a page's secret fit, and the flag's secret is in use.
	s.SetPackageDefaults(store.PackageSettings{AptMirror: "http://apt.example.com/debian", AptSecret: "apt"})
	mustNoErr(t, s.CheckPackageDefaults(ctx))
	if err := s.DeleteSecret(ctx, "apt"); store.ErrorCode(err) != store.ECONFLICT || !strings.Contains(err.Error(), "--apt-secret") {
		t.Errorf("deleting the flag's APT secret = %v, want a conflict naming --apt-secret", err)
	}
	s.SetPackageDefaults(store.PackageSettings{AptMirror: "http://other.example.com/", AptSecret: "apt"})
	if err := s.CheckPackageDefaults(ctx); store.ErrorFields(err)["aptSecret"] == "" {
		t.Errorf("flags with a secret for another host = %v, want refused", err)
	}

	// The settings outlive a restart.
	s.Close()
	s, err = store.Open(path, make([]byte, 32))
	mustNoErr(t, err)
	if got, _ := s.PackageSettings(ctx); got != good {
		t.Errorf("after reopening: %+v, want %+v", got, good)
	}
	mustNoErr(t, s.SavePackageSettings(ctx, store.PackageSettings{}))
	mustNoErr(t, s.DeleteSecret(ctx, "pypi"))
}
