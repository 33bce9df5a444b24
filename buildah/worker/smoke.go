package worker

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	bh "go.podman.io/buildah"
	"go.podman.io/buildah/define"
	"go.podman.io/buildah/pkg/parse"
	"go.podman.io/storage"

	"imagehub/buildah/inventory"
	"imagehub/buildah/recipe"
	"imagehub/buildah/workerspec"
)

// This file is the smoke test of a built image, run after the build and
// before the push, so that an image that fails it is never pushed (its
// tag never exists, and the next build builds again rather than finding it
// "up to date") and never becomes the image's URL. Where the image has
// python3 on its PATH, smoke.py runs in a container of the image: `pip
// check` where that Python has pip, then each pip requirement's top-level
// modules imported (from its top_level.txt or RECORD, read here with
// inventory).
//
// The image is hostile input. The test runs in a container isolated as the
// build's RUN steps are (runIsolation: runc, user namespace, the build's
// network and its policy), as the image's user, without capabilities,
// within smokeDeadline, its output bounded by smokeOutputLimit. Nothing of
// the image runs on the host: the module names are read from its files in
// Go, kept only when they are dotted identifiers, and reach smoke.py as one
// JSON argument; its source is this package's.

//go:embed smoke.py
var smokeScript string

// smokeDeadline bounds a smoke test; an import that hangs fails the build.
// The imports of a large data-science image take a minute or two.
var smokeDeadline = 10 * time.Minute

// smokeOutputLimit is how much of a smoke test's output reaches the log.
const smokeOutputLimit = 1 << 20

// smokePrefix starts the lines of smoke.py's own on its standard output.
const smokePrefix = "imagehub smoke: "

// smokeCheck is one pip requirement and the modules it installs.
type smokeCheck struct {
	Requirement string
	Modules     []string
}

// MarshalJSON writes a check as smoke.py reads it: [requirement, [module, ...]].
func (c smokeCheck) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{c.Requirement, c.Modules})
}

// smokeTest runs the smoke test of the built image imageID, or says in the
// log why it does not. Its error is one line naming what failed.
func smokeTest(ctx context.Context, st storage.Store, env *buildEnv, spec workerspec.Spec, imageID string, log io.Writer) (err error) {
	if spec.SkipSmokeTest {
		fmt.Fprintln(log, "imagehub: smoke test: skipped, the recipe turns it off (\"smokeTest\": false)")
		return nil
	}
	iso := runIsolation(env, spec.Limits, nil)
	b, err := bh.NewBuilder(ctx, st, bh.BuilderOptions{
		FromImage:           imageID,
		PullPolicy:          define.PullNever,
		ContainerSuffix:     ContainerSuffix(spec.BuildID),
		SignaturePolicyPath: env.policyPath,
		Isolation:           iso.kind,
		NamespaceOptions:    iso.namespaces,
		ConfigureNetwork:    iso.network,
		NetworkInterface:    noNetwork{},
		IDMappingOptions:    iso.ids,
		CommonBuildOpts:     iso.common,
		Format:              define.OCIv1ImageManifest,
	})
	if err != nil {
		return fmt.Errorf("smoke test: a container of the image: %s", workerspec.Reason(err))
	}
	defer func() {
		if derr := b.Delete(); derr != nil && err == nil {
			err = fmt.Errorf("smoke test: removing its container: %s", workerspec.Reason(derr))
		}
	}()
	root, err := b.Mount(b.MountLabel)
	if err != nil {
		return fmt.Errorf("smoke test: mounting the image: %s", workerspec.Reason(err))
	}
	python, checks, err := planSmoke(root, envValue(b.Env(), "PATH"), spec.Packages.Pip, log)
	if err != nil {
		return fmt.Errorf("smoke test: reading the image: %s", workerspec.Reason(err))
	}
	if python == "" {
		fmt.Fprintln(log, "imagehub: smoke test: the image has no python3 on its PATH, so its Python part (pip check, imports) is skipped")
		return nil
	}
	fmt.Fprintf(log, "imagehub: smoke test with %s: pip check and the modules of %d pip requirements\n", python, len(checks))
	return runSmoke(b, env, iso, python, checks, log)
}

// planSmoke finds the image's python3 and the modules of each pip
// requirement, saying in the log what it leaves out: a requirement the
// image does not list (a marker may have excluded it), one whose modules
// are unknown, names that are no module names.
func planSmoke(root, pathEnv string, pip []string, log io.Writer) (python string, checks []smokeCheck, err error) {
	python, err = inventory.LookPath(root, pathEnv, "python3")
	if err != nil || python == "" || len(pip) == 0 {
		return python, nil, err
	}
	listed, err := inventory.Read(root, inventory.DefaultLimits)
	if err != nil {
		fmt.Fprintf(log, "imagehub: smoke test: the image's Python packages cannot be read (%s), so none is imported\n", workerspec.Reason(err))
		return python, nil, nil
	}
	dirs := map[string]string{}
	for _, d := range listed.Distributions {
		dirs[recipe.NormalizePipName(d.Name)] = d.Dir
	}
	seen := map[string]bool{}
	for _, line := range pip {
		name := recipe.PipName(line)
		if seen[name] {
			continue
		}
		seen[name] = true
		dir, ok := dirs[name]
		if !ok {
			fmt.Fprintf(log, "imagehub: smoke test: pip %s is not installed where the image's Python packages are listed; nothing of it is imported\n", name)
			continue
		}
		modules, notes, err := inventory.ImportNames(root, dir, inventory.DefaultLimits)
		if err != nil {
			return "", nil, err
		}
		for _, n := range notes {
			fmt.Fprintf(log, "imagehub: smoke test: %s\n", workerspec.Reason(errors.New(n)))
		}
		if len(modules) == 0 {
			fmt.Fprintf(log, "imagehub: smoke test: pip %s names no module to import\n", name)
			continue
		}
		checks = append(checks, smokeCheck{Requirement: name, Modules: modules})
	}
	return python, checks, nil
}

// envValue is the value of key in a list of KEY=value, "" without one.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// smokeArg is smoke.py's one argument: the checks as a JSON list, an empty
// one when there is nothing to import (an image with python3 and no pip
// line still gets pip check), never null.
func smokeArg(checks []smokeCheck) ([]byte, error) {
	if checks == nil {
		checks = []smokeCheck{}
	}
	return json.Marshal(checks)
}

// runSmoke runs smoke.py with the image's python in a container of b and
// reads its verdict.
func runSmoke(b *bh.Builder, env *buildEnv, iso isolation, python string, checks []smokeCheck, log io.Writer) error {
	arg, err := smokeArg(checks)
	if err != nil {
		return err
	}
	sys, err := parse.Volume(iso.sysMount)
	if err != nil {
		return err
	}
	// A runc state folder of the test's own: on the deadline, every
	// container in it is the test's, and is killed.
	runcRoot := env.runcRoot + "-smoke"
	if err := os.MkdirAll(runcRoot, 0o700); err != nil {
		return err
	}
	out := &smokeOutput{log: log, left: smokeOutputLimit}
	done := make(chan error, 1)
	go func() {
		done <- b.Run([]string{python, "-c", smokeScript, string(arg)}, bh.RunOptions{
			Isolation:        iso.kind,
			Runtime:          "runc",
			Args:             []string{"--root", runcRoot},
			NamespaceOptions: iso.namespaces,
			ConfigureNetwork: iso.network,
			Mounts:           []specs.Mount{sys},
			Env:              []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"},
			DropCapabilities: []string{"all"},
			Terminal:         bh.WithoutTerminal,
			Stdin:            bytes.NewReader(nil),
			Stdout:           out.stdout(),
			Stderr:           out.stderr(),
		})
	}()
	timer := time.NewTimer(smokeDeadline)
	defer timer.Stop()
	var runErr error
	timedOut := false
	select {
	case runErr = <-done:
	case <-timer.C:
		timedOut = true
		killContainers(runcRoot, log)
		select {
		case <-done:
		case <-time.After(time.Minute):
			fmt.Fprintln(log, "imagehub: smoke test: its container did not stop after it was killed")
		}
	}
	out.flush()
	return out.verdict(runErr, timedOut)
}

// killContainers kills every container whose runc state is in runcRoot.
func killContainers(runcRoot string, log io.Writer) {
	entries, err := os.ReadDir(runcRoot)
	if err != nil {
		fmt.Fprintf(log, "imagehub: smoke test: listing its containers: %v\n", err)
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		cmd := exec.Command("runc", "--root", runcRoot, "kill", e.Name(), "KILL")
		if msg, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(log, "imagehub: smoke test: killing %s: %v %s\n", filepath.Base(e.Name()), err, bytes.TrimSpace(msg))
		}
	}
}

// smokeOutput takes a smoke test's two output streams into the log, at
// most left bytes of them, and reads smoke.py's own lines from the
// standard output as they pass.
type smokeOutput struct {
	mu   sync.Mutex
	log  io.Writer
	left int
	cut  bool
	line []byte // the standard output's unfinished line

	current  string   // the requirement being imported
	failures []string // the failures smoke.py reported, the first few
	failed   int      // how many it reported
	passed   bool
}

// maxSmokeLine is the longest line of smoke.py's read whole.
const maxSmokeLine = 4096

type smokeStream struct {
	o      *smokeOutput
	stdout bool
}

func (o *smokeOutput) stdout() io.Writer { return smokeStream{o, true} }
func (o *smokeOutput) stderr() io.Writer { return smokeStream{o, false} }

func (s smokeStream) Write(p []byte) (int, error) {
	o := s.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if !s.stdout {
		o.write(p)
		return len(p), nil
	}
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			o.line = append(o.line, rest...)
			if len(o.line) > maxSmokeLine {
				o.endLine()
			}
			break
		}
		o.line = append(o.line, rest[:i]...)
		rest = rest[i+1:]
		o.endLine()
	}
	return len(p), nil
}

// endLine handles a whole line of the standard output.
func (o *smokeOutput) endLine() {
	line := string(o.line)
	o.line = o.line[:0]
	o.write([]byte(line + "\n"))
	msg, ok := strings.CutPrefix(line, smokePrefix)
	if !ok {
		return
	}
	switch {
	case strings.HasPrefix(msg, "import "):
		o.current, _, _ = strings.Cut(strings.TrimPrefix(msg, "import "), ":")
	case strings.HasPrefix(msg, "FAILED "):
		if o.failed++; len(o.failures) < 3 {
			o.failures = append(o.failures, strings.TrimPrefix(msg, "FAILED "))
		}
	case msg == "passed":
		o.passed = true
	}
}

// write writes to the log what the bound still allows.
func (o *smokeOutput) write(p []byte) {
	if o.cut {
		return
	}
	if len(p) > o.left {
		o.log.Write(p[:o.left])
		fmt.Fprintf(o.log, "\nimagehub: smoke test: output cut after %d bytes\n", smokeOutputLimit)
		o.cut = true
		return
	}
	o.left -= len(p)
	o.log.Write(p)
}

// flush handles an unfinished last line.
func (o *smokeOutput) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.line) > 0 {
		o.endLine()
	}
}

// verdict is the test's outcome from what smoke.py said and how its
// container ended: nil only when it ran to the end, said it passed and
// exited 0.
func (o *smokeOutput) verdict(runErr error, timedOut bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	while := ""
	if o.current != "" {
		while = " (while importing " + o.current + ")"
	}
	switch {
	case timedOut:
		return fmt.Errorf("smoke test: not done within %v%s", smokeDeadline, while)
	case o.failed > 0:
		more := ""
		if o.failed > 1 {
			more = fmt.Sprintf(" (and %d more failures, see the log)", o.failed-1)
		}
		return fmt.Errorf("smoke test failed: %s%s", o.failures[0], more)
	case runErr != nil:
		return fmt.Errorf("smoke test: %s%s", workerspec.Reason(runErr), while)
	case !o.passed:
		return errors.New("smoke test: it ended without saying it passed")
	}
	fmt.Fprintln(o.log, "imagehub: smoke test passed")
	return nil
}
