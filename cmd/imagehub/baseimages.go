package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.podman.io/storage/pkg/unshare"

	"imagehub/buildah/mounts"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/buildah/worker"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// baseImagesCmd builds small base images with no internet access beyond
// Debian's mirror — busybox from Debian's busybox-static and a Debian minbase
// from debootstrap — pushes them to the registry and adds them to the
// catalogue, so that a fresh install can make a real build at once.
func baseImagesCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("base-images", flag.ContinueOnError)
	data := fs.String("data", envOr("IMAGEHUB_DATA", "./data"), "data folder of the imagehub installation")
	registry := fs.String("registry", envOr("IMAGEHUB_REGISTRY", "127.0.0.1:5000"), "registry HOST[:PORT][/PREFIX] to push to (default: the embedded registry of a running `imagehub serve`)")
	kinds := fs.String("kinds", "busybox,debian", "which base images to make: busybox, debian")
	insecure := fs.Bool("insecure", true, "reach the registry over plain http")
	if err := fs.Parse(args); err != nil {
		return err
	}
	unshare.MaybeReexecUsingUserNamespace(false)
	d, st, err := openDataDir(*data)
	if err != nil {
		return err
	}
	defer st.Close()
	prefix := strings.TrimSuffix(*registry, "/") + "/base"
	host := strings.SplitN(*registry, "/", 2)[0]
	var hosts []string
	if *insecure {
		hosts = []string{host}
	}
	auth, pullSecret, err := embeddedRegistryAuth(ctx, d, st, host)
	if err != nil {
		return err
	}
	for _, kind := range splitList(*kinds) {
		ref, err := makeBase(ctx, d, kind, prefix, hosts, auth, stdout)
		if err != nil {
			return fmt.Errorf("%s base image: %w", kind, err)
		}
		if err := catalogue(ctx, st, kind, ref, pullSecret); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed %s and added it to the catalogue as base-%s\n", ref, kind)
	}
	return nil
}

// embeddedRegistryAuth returns the push account of the data folder's
// embedded registry and the name of its pull secret when host is that
// registry (the host of its pull secret, which `imagehub serve` keeps), and
// nothing for any other registry: its accounts never leave for another host.
func embeddedRegistryAuth(ctx context.Context, d dataDir, st *store.Store, host string) (*remote.Auth, string, error) {
	embedded, _, _, err := st.SecretAuth(ctx, embeddedPullSecret)
	if store.ErrorCode(err) == store.ENOTFOUND || err == nil && !remote.SameHost(embedded, host) {
		return nil, "", nil
	} else if err != nil {
		return nil, "", err
	}
	acc, err := registry.ReadAccounts(d.path(registryAccountsFile))
	if err != nil {
		return nil, "", fmt.Errorf("pushing to the embedded registry on %s: %w", host, err)
	}
	return &remote.Auth{Username: acc.Push.Username, Password: acc.Push.Password}, embeddedPullSecret, nil
}

// makeBase makes a base image of a kind, pushes it under prefix and returns
// its reference pinned to the pushed digest.
func makeBase(ctx context.Context, d dataDir, kind, prefix string, insecure []string, auth *remote.Auth, log io.Writer) (string, error) {
	tags := map[string]string{worker.BaseBusybox: "busybox:latest", worker.BaseDebian: "debian:bookworm-minbase"}
	tag, ok := tags[kind]
	if !ok {
		return "", fmt.Errorf("unknown kind %q (busybox or debian)", kind)
	}
	tmp, err := os.MkdirTemp(d.path(), "base-")
	if err != nil {
		return "", err
	}
	defer mounts.RemoveAll(tmp)
	ref := prefix + "/" + tag
	digest, err := worker.MakeBaseImage(ctx, worker.BaseImageSpec{
		Kind: kind, Storage: storageOf(d, ""), TmpDir: tmp, Target: ref, PushAuth: auth, Insecure: insecure,
	}, log)
	if err != nil {
		return "", err
	}
	return store.PinnedReference(ref, digest), nil
}

// catalogue adds (or points) the image base-KIND at ref, global and ready,
// pulled with pullSecret.
func catalogue(ctx context.Context, st *store.Store, kind, ref, pullSecret string) error {
	name := "base-" + kind
	img, err := st.FindImage(ctx, name)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return st.CreateImage(ctx, &store.Image{
			DisplayName: name, Type: store.TypeUniversal, URL: ref, Global: true, PullSecret: pullSecret,
			Description: "Offline " + kind + " base image, made by imagehub base-images without Docker Hub.",
		})
	} else if err != nil {
		return err
	}
	img.URL, img.PullSecret = ref, pullSecret
	return st.UpdateImage(ctx, img)
}

// storageOf is the containers/storage store shared by every build of a data
// folder: its layer cache.
func storageOf(d dataDir, driver string) workerspec.Storage {
	return workerspec.Storage{GraphRoot: d.path("storage"), RunRoot: d.path("storage-run"), Driver: driver}
}
