package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"go.podman.io/storage/pkg/unshare"

	"imagehub/buildah"
)

// workerCmd is `imagehub build-worker`: one build, in a process of its own so
// that a crash or a kill cannot take the server down. Its stdout is the build
// log; structured progress goes to file descriptor 3.
func workerCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build-worker", flag.ContinueOnError)
	spec := fs.String("spec", "", "the 0600 spec file written by the server (read, then deleted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *spec == "" {
		return fmt.Errorf("build-worker needs --spec")
	}
	// Rootless: continue inside a user namespace mapped from /etc/subuid and
	// /etc/subgid, where buildah may chroot and own files of other uids.
	// A no-op when running as root.
	unshare.MaybeReexecUsingUserNamespace(false)
	if code := buildah.WorkerMain(ctx, *spec); code != 0 {
		os.Exit(code)
	}
	return nil
}
