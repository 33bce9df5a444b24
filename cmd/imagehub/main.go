// Command imagehub is the image-management service of a data-science
// platform: `serve` runs the web app (with an embedded registry by default),
// `build-worker` is the child process that runs one build, and the other
// subcommands administer a data folder from the shell.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	bh "go.podman.io/buildah"
)

const usage = `usage: imagehub <command> [flags]

commands:
  serve          run the web service (and, by default, an embedded registry)
  user add       create a user:          imagehub user add --data DIR --user NAME [--admin]
  token create   print a new API token:  imagehub token create --data DIR --user NAME [--scope admin|read] [--expires-days N]
  base-images    build offline base images (busybox, debian) and push them to the registry
  build-worker   run one build (started by serve; not for people)
`

func main() {
	// buildah re-executes this binary for its copier and other helpers;
	// those children must do their job and nothing else.
	if bh.InitReexec() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagehub:", err)
		os.Exit(1)
	}
}

// run dispatches to a subcommand; it is main without the process around it,
// so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "serve":
		return serveCmd(ctx, rest, stdout, stderr)
	case cmd == "build-worker":
		return workerCmd(ctx, rest)
	case cmd == "base-images":
		return baseImagesCmd(ctx, rest, stdout)
	case cmd == "user" && len(rest) > 0 && rest[0] == "add":
		return userAddCmd(ctx, rest[1:], stdout)
	case cmd == "token" && len(rest) > 0 && rest[0] == "create":
		return tokenCreateCmd(ctx, rest[1:], stdout)
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
