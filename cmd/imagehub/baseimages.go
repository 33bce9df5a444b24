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
	var hosts []string
	if *insecure {
		hosts = []string{strings.SplitN(*registry, "/", 2)[0]}
	}
	for _, kind := range splitList(*kinds) {
		ref, err := makeBase(ctx, d, kind, prefix, hosts, stdout)
		if err != nil {
			return fmt.Errorf("%s base image: %w", kind, err)
		}
		if err := catalogue(ctx, st, kind, ref); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed %s and added it to the catalogue as base-%s\n", ref, kind)
	}
	return nil
}

func makeBase(ctx context.Context, d dataDir, kind, prefix string, insecure []string, log io.Writer) (string, error) {
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
	_, err = worker.MakeBaseImage(ctx, worker.BaseImageSpec{
		Kind: kind, Storage: storageOf(d, ""), TmpDir: tmp, Target: ref, Insecure: insecure,
	}, log)
	return ref, err
}

// catalogue adds (or points) the image base-KIND at ref, global and ready.
func catalogue(ctx context.Context, st *store.Store, kind, ref string) error {
	name := "base-" + kind
	img, err := st.FindImage(ctx, name)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return st.CreateImage(ctx, &store.Image{
			DisplayName: name, Type: store.TypeUniversal, URL: ref, Global: true,
			Description: "Offline " + kind + " base image, made by imagehub base-images without Docker Hub.",
		})
	} else if err != nil {
		return err
	}
	img.URL = ref
	return st.UpdateImage(ctx, img)
}

// storageOf is the containers/storage store shared by every build of a data
// folder: its layer cache.
func storageOf(d dataDir, driver string) workerspec.Storage {
	return workerspec.Storage{GraphRoot: d.path("storage"), RunRoot: d.path("storage-run"), Driver: driver}
}
