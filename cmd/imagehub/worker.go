package main

import (
	"context"
	"os"

	"imagehub/buildah/worker"
)

// workerCmd is `imagehub build-worker`: one build, or the clean-up after one,
// in a process of its own (see worker.Command). It exits with the worker's
// status.
func workerCmd(ctx context.Context, args []string) error {
	if code := worker.Command(ctx, args); code != 0 {
		os.Exit(code)
	}
	return nil
}
