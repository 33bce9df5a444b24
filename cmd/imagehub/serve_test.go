package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"imagehub/buildah/registry"
)

func TestParseAllowCIDRs(t *testing.T) {
	got, err := parseAllowCIDRs(" 10.20.0.0/16, 192.168.7.9/24 ")
	if want := []string{"10.20.0.0/16", "192.168.7.0/24"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("parseAllowCIDRs = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"10.0.0.0", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/0", "128.0.0.0/1", "fe80::/10", "::/0"} {
		if _, err := parseAllowCIDRs(bad); err == nil || !strings.Contains(err.Error(), "--build-allow-cidr") {
			t.Errorf("parseAllowCIDRs(%q) = %v, want a refusal", bad, err)
		}
	}
}

func TestPushSecretNeedsRegistry(t *testing.T) {
	_, err := parseServeFlags([]string{"--push-secret", "team"})
	if err == nil || !strings.Contains(err.Error(), "--registry") {
		t.Errorf("--push-secret without --registry: %v, want refused", err)
	}
	if _, err := parseServeFlags([]string{"--registry", "registry.test/team", "--push-secret", "team"}); err != nil {
		t.Errorf("--registry with --push-secret: %v", err)
	}
}

// startTestRegistry runs app.startRegistry on a data folder, as serve does.
func startTestRegistry(t *testing.T, dir string) *app {
	t.Helper()
	a := &app{cfg: serveConfig{registryAddr: "127.0.0.1:0"}, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var err error
	if a.data, a.store, err = openDataDir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.store.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := a.startRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestEmbeddedRegistryAccounts: serve generates the registry's accounts once
// into the data folder (0600), pushes with the push account, offers the
// pull-only account as the ready pull secret that built images get, and the
// registry refuses anonymous requests.
func TestEmbeddedRegistryAccounts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a := startTestRegistry(t, dir)
	path := filepath.Join(dir, registryAccountsFile)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("accounts file: %v %v, want mode 0600", fi, err)
	}
	acc, err := registry.ReadAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimSuffix(a.prefix, "/imagehub")
	if a.pushAuth == nil || a.pushAuth.Password != acc.Push.Password || a.registryPull == nil || a.registryPull.Password != acc.Pull.Password {
		t.Errorf("app credentials: push %+v pull %+v", a.pushAuth, a.registryPull)
	}
	if a.pullSecret != embeddedPullSecret {
		t.Errorf("built images' pull secret = %q, want %q", a.pullSecret, embeddedPullSecret)
	}
	gotHost, user, pass, err := a.store.SecretAuth(context.Background(), embeddedPullSecret)
	if err != nil || gotHost != host || user != acc.Pull.Username || pass != acc.Pull.Password {
		t.Errorf("pull secret = %q %q %q %v, want the pull account for %s", gotHost, user, pass, err, host)
	}
	res, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET /v2/ = %d, want 401", res.StatusCode)
	}

	t.Run("a restart keeps the accounts and moves the secret to the new address", func(t *testing.T) {
		a.store.Close()
		again := startTestRegistry(t, dir)
		if *again.pushAuth != *a.pushAuth || *again.registryPull != *a.registryPull {
			t.Error("the accounts changed across a restart")
		}
		newHost := strings.TrimSuffix(again.prefix, "/imagehub")
		if gotHost, _, _, err := again.store.SecretAuth(context.Background(), embeddedPullSecret); err != nil || gotHost != newHost {
			t.Errorf("pull secret host %q %v, want %s", gotHost, err, newHost)
		}
	})
}
