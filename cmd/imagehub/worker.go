package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"go.podman.io/storage/pkg/unshare"

	"imagehub/buildah"
)

// eventFDAfterReexec is where a rootless worker keeps its event pipe across
// its re-execution into a user namespace (see buildah.MoveEventFD).
const eventFDAfterReexec = 64

// workerCmd is `imagehub build-worker`: one build, in a process of its own so
// that a crash or a kill cannot take the server down. Its stdout is the build
// log; structured progress goes to file descriptor 3.
func workerCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build-worker", flag.ContinueOnError)
	spec := fs.String("spec", "", "the 0600 spec file written by the server (read, then deleted)")
	cleanup := fs.Int64("cleanup", 0, "instead of building, remove the leftover working containers of this build")
	var stg buildah.Storage
	fs.StringVar(&stg.GraphRoot, "graph-root", "", "storage graph root (with --cleanup)")
	fs.StringVar(&stg.RunRoot, "run-root", "", "storage run root (with --cleanup)")
	fs.StringVar(&stg.Driver, "driver", "", "storage driver (with --cleanup)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cleanup > 0 {
		unshare.MaybeReexecUsingUserNamespace(false)
		n, err := buildah.CleanupBuild(stg, *cleanup)
		fmt.Printf("removed %d working containers of build %d\n", n, *cleanup)
		return err
	}
	if *spec == "" {
		return fmt.Errorf("build-worker needs --spec")
	}
	// Rootless: continue inside a user namespace mapped from /etc/subuid and
	// /etc/subgid, where buildah may chroot and own files of other uids.
	// A no-op when running as root.
	if os.Geteuid() != 0 {
		if err := buildah.MoveEventFD(eventFDAfterReexec); err != nil {
			return fmt.Errorf("move the event pipe: %w", err)
		}
	}
	unshare.MaybeReexecUsingUserNamespace(false)
	if code := buildah.WorkerMain(ctx, *spec); code != 0 {
		os.Exit(code)
	}
	return nil
}

// cleanupInWorker removes a build's leftover containers from a worker
// process: a server that is not root cannot unmount or delete them itself,
// since they belong to the workers' user namespace.
func cleanupInWorker(stg buildah.Storage, id int64) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	out, err := exec.Command(exe, "build-worker", "--cleanup", strconv.FormatInt(id, 10),
		"--graph-root", stg.GraphRoot, "--run-root", stg.RunRoot, "--driver", stg.Driver).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	var n int
	fmt.Sscanf(string(out), "removed %d", &n)
	return n, nil
}
