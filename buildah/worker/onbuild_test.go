package worker

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	bh "go.podman.io/buildah"
	"go.podman.io/buildah/define"
	"go.podman.io/image/v5/docker"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/recipe"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/buildah/workerspec"
)

// pushOnBuildBase makes from the pushed image base an image with the given
// ONBUILD triggers, in Docker's format (the OCI one has no place for them),
// pushes it to reg as name and returns its reference.
func pushOnBuildBase(t *testing.T, reg *registry.Server, s workerspec.Storage, base, name string, triggers ...string) string {
	t.Helper()
	ctx := context.Background()
	var log bytes.Buffer
	env, err := enterBuildEnv(workerspec.Spec{TmpDir: buildtest.TraversableDir(t)}, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer env.leave()
	store, err := OpenStore(s)
	if err != nil {
		t.Fatal(err)
	}
	sys := remote.SystemContext(nil, true)
	b, err := bh.NewBuilder(ctx, store, bh.BuilderOptions{
		FromImage: base, PullPolicy: define.PullIfMissing, SystemContext: sys, SignaturePolicyPath: env.policyPath,
		Isolation: define.IsolationChroot, NetworkInterface: noNetwork{}, ContainerSuffix: "onbuild-base", ReportWriter: &log,
		Format: define.Dockerv2ImageManifest,
	})
	if err != nil {
		t.Fatalf("NewBuilder(%s): %v\n%s", base, err, log.String())
	}
	defer b.Delete()
	for _, tr := range triggers {
		b.SetOnBuild(tr)
	}
	ref := reg.Addr() + "/" + name
	dest, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.Commit(ctx, dest, bh.CommitOptions{
		PreferredManifestType: define.Dockerv2ImageManifest, SystemContext: sys, SignaturePolicyPath: env.policyPath, ReportWriter: &log,
	}); err != nil {
		t.Fatalf("committing %s: %v\n%s", ref, err, log.String())
	}
	return ref
}

// TestWorkerRefusesOnBuildBase: a base image with ONBUILD triggers is refused
// with a plain reason before anything is built, since buildah would run the
// triggers ahead of the recipe.
func TestWorkerRefusesOnBuildBase(t *testing.T) {
	buildtest.NeedRoot(t)
	reg, st := buildtest.Registry(t, ""), newTestStorage(t)
	plain, _ := pushTestBase(t, reg, st, testBase{name: "plain/busybox", extra: allStubs()})
	triggers := []string{"RUN touch /onbuild-ran", "ADD http://127.0.0.1:1/x /x"}
	base := pushOnBuildBase(t, reg, st, plain, "onbuild/busybox:base", triggers...)
	if info, err := remote.Inspect(context.Background(), base, nil, true); err != nil || !slices.Equal(info.OnBuild, triggers) {
		t.Fatalf("the test base's triggers = %q, %v; want %q", info.OnBuild, err, triggers)
	}

	pkgs := recipe.Packages{Apt: []string{"curl"}}
	spec := testSpec(t, 21, st, reg, base, "team/onbuild:"+recipe.Tag(base, pkgs), pkgs)
	rec, log, _, err := runTestWorker(t, context.Background(), spec)
	if err == nil {
		t.Fatalf("Run built from a base with ONBUILD triggers:\n%s", log)
	}
	want := `the base image has ONBUILD triggers ("RUN touch /onbuild-ran", "ADD http://127.0.0.1:1/x /x"), ` +
		`which would run code the recipe does not show; use a base image without them`
	if got := workerspec.Reason(err); got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
	if strings.Contains(log, "STEP") || slices.Contains(rec.phases(), workerspec.PhasePushing) {
		t.Errorf("a build step ran:\n%s", log)
	}
	if _, exists, _ := remote.TagExists(context.Background(), spec.Target, nil, true); exists {
		t.Error("the refused build pushed its target")
	}

	// The same recipe on the base without triggers builds.
	spec = testSpec(t, 22, st, reg, plain, "team/plain:"+recipe.Tag(plain, pkgs), pkgs)
	if _, log, _, err := runTestWorker(t, context.Background(), spec); err != nil {
		t.Errorf("Run on the plain base: %v\n%s", err, log)
	}
}

func TestRefuseOnBuildReason(t *testing.T) {
	if err := refuseOnBuild(nil); err != nil {
		t.Errorf("no triggers: %v", err)
	}
	long := "RUN " + strings.Repeat("x", 200)
	err := refuseOnBuild([]string{"RUN a\nRUN b", long, "RUN c", "RUN d", "RUN e"})
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, `"RUN a\nRUN b"`) || !strings.Contains(msg, "...") ||
		!strings.Contains(msg, "and 2 more") || strings.Contains(msg, "RUN d") || len(msg) > 300 {
		t.Errorf("reason = %q", msg)
	}
}
