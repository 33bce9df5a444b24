package queue

import (
	"context"
	"reflect"
	"testing"

	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// TestQueuePackageSetup: a build's spec names its image's owner (whose
// package caches it uses), the shared cache folder, and the package mirrors
// in effect when it starts, the Settings page's over the flags', with the
// credentials of their secrets; a change of the settings applies to the
// next build.
func TestQueuePackageSetup(t *testing.T) {
	e := newQueueEnv(t, func(c *Config) { c.PackageCache = "/data/cache/packages" })
	ctx := context.Background()
	for _, sec := range []*store.Secret{
		{Name: "pypi", RegistryHost: "10.1.2.3:8080", Username: "pipuser", Password: "pip-pw"},
		{Name: "apt", RegistryHost: "apt.example.com", Username: "aptuser", Password: "apt-pw"},
	} {
		if err := e.st.CreateSecret(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.CreateGroup(ctx, &store.Group{Name: "team-a"}); err != nil {
		t.Fatal(err)
	}
	e.st.SetPackageDefaults(store.PackageSettings{AptMirror: "http://apt.example.com/debian", AptSecret: "apt",
		PipIndexURL: "https://flag.example.com/simple"})
	if err := e.st.SavePackageSettings(ctx, store.PackageSettings{PipIndexURL: "http://10.1.2.3:8080/simple",
		PipSecret: "pypi", CondaChannels: "conda-forge, bioconda"}); err != nil {
		t.Fatal(err)
	}
	r := okRecipe
	img := &store.Image{DisplayName: "grouped", Type: store.TypeCPU, Owner: "team-a", Recipe: &r}
	if err := e.st.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.CreateBuild(ctx, img.Name, r, "registry.test/"+img.Name+":abc"); err != nil {
		t.Fatal(err)
	}
	e.run(t)
	e.q.Notify()
	j := e.nextJob(t)
	want := workerspec.Mirrors{
		PipIndexURL: "http://10.1.2.3:8080/simple", CondaChannels: []string{"conda-forge", "bioconda"},
		AptMirror: "http://apt.example.com/debian",
		PipAuth:   &workerspec.HostAuth{Host: "10.1.2.3:8080", Username: "pipuser", Password: "pip-pw"},
		AptAuth:   &workerspec.HostAuth{Host: "apt.example.com", Username: "aptuser", Password: "apt-pw"},
	}
	if !reflect.DeepEqual(j.spec.Mirrors, want) {
		t.Errorf("mirrors = %+v, want %+v", j.spec.Mirrors, want)
	}
	if j.spec.Owner != "team-a" || j.spec.PackageCache != "/data/cache/packages" {
		t.Errorf("owner %q, package cache %q", j.spec.Owner, j.spec.PackageCache)
	}
	j.succeed()

	// Cleared on the page, the pip index is the flag's again, without the
	// page's secret.
	if err := e.st.SavePackageSettings(ctx, store.PackageSettings{}); err != nil {
		t.Fatal(err)
	}
	b := e.queueBuild(t, "system-image", okRecipe)
	j = e.nextJob(t)
	if j.spec.Owner != store.OwnerSystem || j.spec.Mirrors.PipIndexURL != "https://flag.example.com/simple" ||
		j.spec.Mirrors.PipAuth != nil || j.spec.Mirrors.CondaChannels != nil {
		t.Errorf("build %d: owner %q, mirrors %+v", b.ID, j.spec.Owner, j.spec.Mirrors)
	}
	j.succeed()
}
