package main

// End-to-end tests of the real binary: `imagehub serve` with a temp data
// folder and its embedded registry, real rootless-capable buildah builds in
// `imagehub build-worker` children, checked from outside with skopeo.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bh "go.podman.io/buildah"
	"golang.org/x/crypto/bcrypt"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/kube/kubetest"
	"imagehub/buildah/registry"
	"imagehub/buildah/remote"
	"imagehub/buildah/worker"
	"imagehub/buildah/workerspec"
)

// binary is the imagehub binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	// The test kubelet runs the pods of the Kubernetes case as this binary.
	if len(os.Args) > 2 && os.Args[1] == fakeWorkerArg {
		os.Exit(kubetest.FakeWorker(os.Args[3:], os.Args[2]))
	}
	// MakeBaseImage runs buildah in this test process, which re-executes it.
	if bh.InitReexec() {
		return
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "imagehub-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "imagehub")
	// The binary must be reachable by the unprivileged user of the rootless test.
	os.Chmod(dir, 0o755)
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		return 1
	}
	return m.Run()
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end builds need root to set up (the rootless case runs the server as user imagehub)")
	}
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is one `imagehub serve` process under test.
type server struct {
	t            testing.TB
	data         string
	addr, regAdr string
	token        string
	cred         *syscall.Credential
	// args are added to the serve command line.
	args []string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs imagehub serve on a fresh data folder (or data, when
// given) and waits for /healthz.
func startServer(t testing.TB, data string, cred *syscall.Credential) *server {
	t.Helper()
	if data == "" {
		data = filepath.Join(buildtest.TraversableDir(t), "data")
	}
	s := &server{t: t, data: data, addr: freeAddr(t), regAdr: freeAddr(t), cred: cred}
	s.start()
	return s
}

func (s *server) start() {
	t := s.t
	t.Helper()
	s.out, s.done = &lockedBuffer{}, make(chan struct{})
	args := append([]string{"serve", "--addr", s.addr, "--data", s.data, "--registry-addr", s.regAdr, "--build-deadline", "5m"}, s.args...)
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env = append(os.Environ(), "IMAGEHUB_ADMIN_PASSWORD=e2e-admin-password")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// Its own process group: the test ends exactly the processes it started.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	if s.cred != nil {
		s.cmd.Env = append(minimalEnv(), "IMAGEHUB_ADMIN_PASSWORD=e2e-admin-password")
		s.cmd.Dir = s.data
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + s.addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				s.ensureToken()
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("imagehub serve exited:\n%s", s.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("imagehub serve did not answer /healthz:\n%s", s.out)
}

// stop ends the server with SIGTERM and waits for it.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// kill9 kills the server process alone, as a crash would, leaving its
// build workers (in their own process groups) behind.
func (s *server) kill9() {
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

func (s *server) ensureToken() {
	if s.token != "" {
		return
	}
	cmd := exec.Command(binary, "token", "create", "--data", s.data, "--user", "admin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if s.cred != nil {
		cmd.Env, cmd.Dir = minimalEnv(), s.data
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("token create: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	s.token = lines[len(lines)-1]
}

// api calls the JSON API with the admin token and decodes the answer into out.
func (s *server) api(method, path string, body, out any) int {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+s.addr+"/api/v1"+path, r)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			if sp, ok := out.(*string); ok {
				*sp = string(raw)
			} else {
				s.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
			}
		}
	}
	return resp.StatusCode
}

type apiBuild struct {
	ID          int64  `json:"id"`
	Image       string `json:"image"`
	Status      string `json:"status"`
	TargetImage string `json:"targetImage"`
	Digest      string `json:"digest"`
	Error       string `json:"error"`
}

type apiImage struct {
	Name        string    `json:"name"`
	URL         string    `json:"url"`
	URLForGPU   string    `json:"urlForGpu"`
	PullSecret  string    `json:"pullSecret"`
	Ready       bool      `json:"ready"`
	LatestBuild *apiBuild `json:"latestBuild"`
}

// createCustomImage posts an image with a recipe and returns its first build.
func (s *server) createCustomImage(name string, recipe map[string]string) apiBuild {
	s.t.Helper()
	var img apiImage
	if code := s.api("POST", "/images", map[string]any{
		"displayName": name, "type": "cpu", "global": true, "build": recipe,
	}, &img); code != http.StatusCreated {
		s.t.Fatalf("create %s: status %d, %+v", name, code, img)
	}
	if img.LatestBuild == nil {
		s.t.Fatalf("create %s: no build started: %+v", name, img)
	}
	return *img.LatestBuild
}

// waitBuild polls a build until it reaches one of the states.
func (s *server) waitBuild(id int64, timeout time.Duration, states ...string) apiBuild {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var b apiBuild
	for time.Now().Before(deadline) {
		s.api("GET", "/builds/"+strconv.FormatInt(id, 10), nil, &b)
		for _, st := range states {
			if b.Status == st {
				return b
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("build %d is %q after %s, want one of %v\nlog:\n%s\nserver:\n%s", id, b.Status, timeout, states, s.log(id), s.out)
	return b
}

func (s *server) log(id int64) string {
	var text string
	s.api("GET", fmt.Sprintf("/builds/%d/log", id), nil, &text)
	return text
}

// waitLog polls a build's log until it holds want.
func (s *server) waitLog(id int64, want string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(s.log(id), want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("build %d log never showed %q:\n%s", id, want, s.log(id))
}

// Stand-ins for the package managers, recording their arguments; an apt
// package named "sleepy" makes apt-get sleep, for cancel and crash tests, "napping"
// makes it print a line a second for six seconds, for watching a log live, and
// "chatty" prints soakRunLines numbered lines in bursts over about six seconds
// and one line of carriage-return progress, for the soak's log viewers.
// apt-get install records each package it is given in dpkg's status file,
// installed at version 1.0-stub, for the build's package list.
var stubs = map[string]string{
	"/usr/bin/apt-get": "#!/bin/sh\necho \"apt-get $*\" >> /recorded.txt\n" +
		"case \"$*\" in *sleepy*) echo 'sleeping now'; exec sleep 600;; esac\n" +
		"case \"$*\" in *napping*) for i in 1 2 3 4 5 6; do echo \"napping $i\"; sleep 1; done;; esac\n" +
		"case \"$*\" in *chatty*) i=0; while [ $i -lt " + strconv.Itoa(soakRunLines) + " ]; do i=$((i+1)); echo \"chatty line $i\"; " +
		"if [ $((i % 20)) -eq 0 ]; then sleep 0.2; fi; done; printf 'progress 1%%\\rprogress 100%%\\n';; esac\n" +
		"if [ \"$1\" = install ]; then mkdir -p /var/lib/dpkg; shift; for p in \"$@\"; do case \"$p\" in -*|*=*) ;; *)\n" +
		"printf 'Package: %s\\nStatus: install ok installed\\nVersion: 1.0-stub\\n\\n' \"$p\" >> /var/lib/dpkg/status;; esac; done; fi\n",
	"/usr/local/bin/conda": "#!/bin/sh\necho \"conda $*\" >> /recorded.txt\n",
	"/usr/local/bin/pip":   "#!/bin/sh\necho \"pip $*\" >> /recorded.txt\n",
}

// pushBase makes a busybox base image with the stubs and pushes it into the
// server's embedded registry with its push account.
func pushBase(t testing.TB, s *server) string {
	t.Helper()
	push, _ := s.registryAccounts()
	return pushBaseTo(t, s.regAdr, push)
}

// registryAccounts reads the embedded registry's push and pull accounts from
// the server's data folder, where it generated them.
func (s *server) registryAccounts() (push, pull *remote.Auth) {
	s.t.Helper()
	acc, err := registry.ReadAccounts(filepath.Join(s.data, registryAccountsFile))
	if err != nil {
		s.t.Fatal(err)
	}
	return &remote.Auth{Username: acc.Push.Username, Password: acc.Push.Password},
		&remote.Auth{Username: acc.Pull.Username, Password: acc.Pull.Password}
}

// pushBaseTo makes the stub busybox base in registry reg, pushing with auth.
func pushBaseTo(t testing.TB, reg string, auth *remote.Auth) string {
	t.Helper()
	dir := t.TempDir()
	st := workerspec.Storage{GraphRoot: filepath.Join(dir, "graph"), RunRoot: filepath.Join(dir, "run")}
	t.Cleanup(func() {
		if store, err := worker.OpenStore(st); err == nil {
			store.Shutdown(true)
		}
	})
	ref := reg + "/base/busybox:stubs"
	var log bytes.Buffer
	if _, err := worker.MakeBaseImage(context.Background(), worker.BaseImageSpec{
		Kind: worker.BaseBusybox, Storage: st, TmpDir: t.TempDir(), Target: ref, PushAuth: auth,
		Insecure: []string{reg}, Extra: stubs, User: "1000",
	}, &log); err != nil {
		t.Fatalf("base image: %v\n%s", err, log.String())
	}
	return ref
}

// skopeoDigest asks Debian's skopeo, an independent client, for the digest
// of a pushed image, reading with auth.
func skopeoDigest(t *testing.T, ref string, auth *remote.Auth) string {
	t.Helper()
	out, err := skopeo("inspect", auth, "--format", "{{.Digest}}", "docker://"+ref)
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v %s", ref, err, out)
	}
	return strings.TrimSpace(out)
}

// skopeo runs Debian's skopeo over plain http with auth (none when nil) for
// both ends, and returns its output (standard error too, when it fails).
func skopeo(command string, auth *remote.Auth, args ...string) (string, error) {
	all := []string{command}
	switch command {
	case "copy":
		all = append(all, "--src-tls-verify=false", "--dest-tls-verify=false")
		if auth != nil {
			creds := auth.Username + ":" + auth.Password
			all = append(all, "--src-creds", creds, "--dest-creds", creds)
		}
	default:
		all = append(all, "--tls-verify=false")
		if auth != nil {
			all = append(all, "--creds", auth.Username+":"+auth.Password)
		}
	}
	out, err := exec.Command("skopeo", append(all, args...)...).Output()
	if err != nil {
		return string(out) + stderrOf(err), err
	}
	return string(out), nil
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// mountsUnder lists the mount points below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

// leftoverContainers lists the working containers in the server's store.
func leftoverContainers(t *testing.T, data string) []string {
	t.Helper()
	st, err := worker.OpenStore(workerspec.Storage{GraphRoot: filepath.Join(data, "storage"), RunRoot: filepath.Join(data, "storage-run")})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Shutdown(false)
	cs, err := st.Containers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, strings.Join(c.Names, ","))
	}
	return names
}

func TestBuildThroughServer(t *testing.T) {
	needRoot(t)
	s := startServer(t, "", nil)
	base := pushBase(t, s)

	b := s.createCustomImage("e2e-all", map[string]string{
		"baseImage": base, "apt": "curl\n# a comment\nvim", "conda": "-c conda-forge::numpy==1.17*", "pip": "numpy>=1.2",
	})
	b = s.waitBuild(b.ID, 3*time.Minute, "succeeded", "failed")
	if b.Status != "succeeded" {
		t.Fatalf("build %+v\nlog:\n%s", b, s.log(b.ID))
	}
	push, pull := s.registryAccounts()
	if got := skopeoDigest(t, b.TargetImage, pull); got != b.Digest {
		t.Errorf("skopeo sees digest %s, the build says %s", got, b.Digest)
	}
	if !strings.HasPrefix(b.TargetImage, s.regAdr+"/imagehub/e2e-all:") {
		t.Errorf("target %q is not in the embedded registry", b.TargetImage)
	}
	var img apiImage
	s.api("GET", "/images/e2e-all", nil, &img)
	pinned := b.TargetImage + "@" + b.Digest
	if !img.Ready || img.URL != pinned || img.URLForGPU != pinned || img.PullSecret != embeddedPullSecret {
		t.Errorf("image after build: %+v, want ready at %s with pull secret %s", img, pinned, embeddedPullSecret)
	}
	log := s.log(b.ID)
	for _, want := range []string{"conda-forge::numpy==1.17*", "'numpy>=1.2'", "'curl' 'vim'"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	wantPackages := `{"items":[{"manager":"apt","name":"curl","version":"1.0-stub"},{"manager":"apt","name":"vim","version":"1.0-stub"}],"total":2}`
	var packages string
	if s.api("GET", fmt.Sprintf("/builds/%d/packages", b.ID), nil, &packages); strings.TrimSpace(packages) != wantPackages {
		t.Errorf("the build's packages: %s\nwant %s\nlog:\n%s", packages, wantPackages, log)
	}

	t.Run("rebuild of the same recipe is up to date", func(t *testing.T) {
		var rb apiBuild
		if code := s.api("POST", "/images/e2e-all/rebuild", nil, &rb); code != http.StatusAccepted && code != http.StatusCreated {
			t.Fatalf("rebuild: %d %+v", code, rb)
		}
		rb = s.waitBuild(rb.ID, 2*time.Minute, "succeeded", "failed")
		if rb.Status != "succeeded" || rb.TargetImage != b.TargetImage || rb.Digest != b.Digest || !strings.Contains(s.log(rb.ID), "up to date") {
			t.Errorf("rebuild %+v, log:\n%s", rb, s.log(rb.ID))
		}
		// The same image holds the same packages.
		var diff string
		s.api("GET", "/images/e2e-all/diff", nil, &diff)
		if want := fmt.Sprintf(`{"from":%d,"to":%d,"added":[],"removed":[],"changed":[]}`, b.ID, rb.ID); strings.TrimSpace(diff) != want {
			t.Errorf("diff of the up-to-date rebuild: %s, want %s", diff, want)
		}
	})

	t.Run("the registry takes pushes from its push account only", func(t *testing.T) {
		var secrets struct {
			Items []struct{ Name, RegistryHost, Username, Password string }
		}
		s.api("GET", "/secrets", nil, &secrets)
		if n := len(secrets.Items); n != 1 || secrets.Items[0].Name != embeddedPullSecret ||
			secrets.Items[0].RegistryHost != s.regAdr || secrets.Items[0].Username != pull.Username || secrets.Items[0].Password != "" {
			t.Errorf("secrets = %+v, want the ready pull secret %s for %s holding the pull account", secrets.Items, embeddedPullSecret, s.regAdr)
		}
		evil := s.regAdr + "/imagehub/e2e-all:evil"
		for _, who := range []struct {
			name string
			auth *remote.Auth
		}{{"anonymous", nil}, {"the pull account", pull}} {
			// The source is readable with the pull account: only the write may fail.
			src := "docker://" + remote.PullReference(pinned)
			args := []string{"--src-creds", pull.Username + ":" + pull.Password, "--src-tls-verify=false", "--dest-tls-verify=false"}
			if who.auth != nil {
				args = append(args, "--dest-creds", who.auth.Username+":"+who.auth.Password)
			}
			out, err := exec.Command("skopeo", append(append([]string{"copy"}, args...), src, "docker://"+evil)...).CombinedOutput()
			if err == nil {
				t.Errorf("%s pushed to the embedded registry", who.name)
			} else if !strings.Contains(string(out), "unauthorized") && !strings.Contains(string(out), "denied") && !strings.Contains(string(out), "authentication required") {
				t.Errorf("%s: push failed for another reason: %s", who.name, out)
			}
		}
		if out, err := skopeo("inspect", nil, "docker://"+b.TargetImage); err == nil {
			t.Errorf("an anonymous read succeeded: %s", out)
		}
		req, _ := http.NewRequest(http.MethodDelete, "http://"+s.regAdr+"/v2/imagehub/e2e-all/manifests/"+b.Digest, nil)
		req.SetBasicAuth(push.Username, push.Password)
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("DELETE with the push account: %v %v, want 405", res, err)
		} else {
			res.Body.Close()
		}
	})

	t.Run("a tag replaced by somebody else is built again", func(t *testing.T) {
		// Somebody with the push account points the recipe's tag at the base.
		if out, err := skopeo("copy", push, "docker://"+base, "docker://"+b.TargetImage); err != nil {
			t.Fatalf("skopeo copy: %v %s", err, out)
		}
		var rb apiBuild
		if code := s.api("POST", "/images/e2e-all/rebuild", nil, &rb); code != http.StatusAccepted && code != http.StatusCreated {
			t.Fatalf("rebuild: %d %+v", code, rb)
		}
		rb = s.waitBuild(rb.ID, 3*time.Minute, "succeeded", "failed")
		log := s.log(rb.ID)
		if rb.Status != "succeeded" || rb.TargetImage != b.TargetImage || strings.Contains(log, "is up to date") || !strings.Contains(log, "building it again") {
			t.Fatalf("rebuild after the tag was replaced: %+v, log:\n%s", rb, log)
		}
		if got := skopeoDigest(t, b.TargetImage, pull); got != rb.Digest {
			t.Errorf("the tag names %s, the rebuild pushed %s", got, rb.Digest)
		}
		var img apiImage
		s.api("GET", "/images/e2e-all", nil, &img)
		if want := b.TargetImage + "@" + rb.Digest; img.URL != want {
			t.Errorf("image URL %s, want %s", img.URL, want)
		}
		// The digest the image pointed at before is still there.
		if got := skopeoDigest(t, remote.PullReference(pinned), pull); got != b.Digest {
			t.Errorf("the first build's digest reads as %s", got)
		}
	})

	t.Run("cancel during a RUN step", func(t *testing.T) {
		cb := s.createCustomImage("e2e-cancel", map[string]string{"baseImage": base, "apt": "sleepy"})
		s.waitLog(cb.ID, "sleeping now", 2*time.Minute)
		// FROM, USER root, then the apt step, which sleeps: the worker's
		// step events reached the build's JSON (the first build of its
		// image: no ETA).
		var running struct {
			Progress *struct {
				Step, Steps int
				ETASeconds  *int `json:"etaSeconds"`
			} `json:"progress"`
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			s.api("GET", fmt.Sprintf("/builds/%d", cb.ID), nil, &running)
			if p := running.Progress; p != nil && p.Step == 3 {
				if p.Steps < 3 || p.ETASeconds != nil {
					t.Errorf("during the apt step: %+v, want step 3 of 3 or more and no ETA", *p)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("during the apt step, the build's progress is %+v, want step 3", running.Progress)
			}
		}
		start := time.Now()
		if code := s.api("POST", fmt.Sprintf("/builds/%d/cancel", cb.ID), nil, nil); code >= 300 {
			t.Fatalf("cancel: status %d", code)
		}
		cb = s.waitBuild(cb.ID, 5*time.Second, "cancelled", "failed", "succeeded")
		took := time.Since(start)
		if cb.Status != "cancelled" || took > 2*time.Second {
			t.Errorf("after cancel: %s in %s, want cancelled within 2s", cb.Status, took)
		}
		if left := leftoverContainers(t, s.data); len(left) > 0 {
			t.Errorf("leftover containers after cancel: %v", left)
		}
		if m := mountsUnder(t, s.data); len(m) > 0 {
			t.Errorf("leftover mounts after cancel: %v", m)
		}
		if code := s.api("POST", fmt.Sprintf("/builds/%d/cancel", cb.ID), nil, nil); code != http.StatusConflict {
			t.Errorf("cancelling a cancelled build: %d, want 409", code)
		}
	})
}

func TestServerCrashMidBuild(t *testing.T) {
	needRoot(t)
	s := startServer(t, "", nil)
	base := pushBase(t, s)
	b := s.createCustomImage("e2e-crash", map[string]string{"baseImage": base, "apt": "sleepy"})
	s.waitLog(b.ID, "sleeping now", 2*time.Minute)
	before := s.log(b.ID)
	s.kill9()

	s.start()
	b = s.waitBuild(b.ID, 30*time.Second, "interrupted")
	log := s.log(b.ID)
	if !strings.HasPrefix(log, before) || !strings.Contains(log, "interrupted") {
		t.Errorf("log after restart does not keep the old log and say interrupted:\n%s", log)
	}
	if left := leftoverContainers(t, s.data); len(left) > 0 {
		t.Errorf("leftover containers after restart: %v", left)
	}
	var rb apiBuild
	s.api("POST", "/images/e2e-crash/rebuild", map[string]string{"baseImage": base, "apt": "curl"}, &rb)
	rb = s.waitBuild(rb.ID, 3*time.Minute, "succeeded", "failed")
	if rb.Status != "succeeded" {
		t.Errorf("rebuild after crash: %+v\n%s", rb, s.log(rb.ID))
	}
}

func TestRootlessServer(t *testing.T) {
	needRoot(t)
	u, err := user.Lookup("imagehub")
	if err != nil {
		t.Skip("no user imagehub (.ci/install.sh creates it with /etc/subuid and /etc/subgid ranges)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// t.TempDir's parent is private to root; the server's user needs a way in.
	dir, err := os.MkdirTemp("", "imagehub-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { removeAsRoot(t, dir) })
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(data, uid, gid)
	s := startServer(t, data, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)})
	base := pushBase(t, s)
	b := s.createCustomImage("e2e-rootless", map[string]string{"baseImage": base, "apt": "curl", "pip": "requests"})
	b = s.waitBuild(b.ID, 3*time.Minute, "succeeded", "failed")
	if b.Status != "succeeded" {
		t.Fatalf("rootless build %+v\n%s\nserver:\n%s", b, s.log(b.ID), s.out)
	}
	if _, pull := s.registryAccounts(); skopeoDigest(t, b.TargetImage, pull) != b.Digest {
		t.Errorf("skopeo sees another digest than the build's %s", b.Digest)
	}
	// A rootless worker mounts the built image in its user namespace to
	// list its packages.
	var packages string
	if s.api("GET", fmt.Sprintf("/builds/%d/packages", b.ID), nil, &packages); !strings.Contains(packages, `"name":"curl"`) {
		t.Errorf("the rootless build's packages: %s\nlog:\n%s", packages, s.log(b.ID))
	}

	cb := s.createCustomImage("e2e-rootless-cancel", map[string]string{"baseImage": base, "apt": "sleepy"})
	s.waitLog(cb.ID, "sleeping now", 2*time.Minute)
	start := time.Now()
	s.api("POST", fmt.Sprintf("/builds/%d/cancel", cb.ID), nil, nil)
	cb = s.waitBuild(cb.ID, 5*time.Second, "cancelled", "failed", "succeeded")
	if cb.Status != "cancelled" || time.Since(start) > 2*time.Second {
		t.Errorf("rootless cancel: %s after %s, want cancelled within 2s", cb.Status, time.Since(start))
	}
	time.Sleep(time.Second) // let the clean-up that follows a cancel finish
	if log := s.log(cb.ID); strings.Contains(s.out.String(), "level=ERROR") || strings.Contains(log, "working containers") {
		t.Errorf("the clean-up after a rootless cancel failed:\n%s\nserver:\n%s", log, s.out)
	}
	if left := leftoverContainers(t, s.data); len(left) > 0 {
		t.Errorf("leftover containers after a rootless cancel: %v", left)
	}
}

// removeAsRoot makes sure a folder written by another user can be removed.
func removeAsRoot(t *testing.T, dir string) {
	for _, m := range mountsUnder(t, dir) {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	os.RemoveAll(dir)
}

func minimalEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/var/lib/imagehub"}
}

// TestExternalRegistryWithPushSecret: with --registry and --push-secret the
// server pushes to that registry (one that demands a password) instead of
// serving its own, pulls the base with the recipe's pull secret, and gives
// the built image the push secret as its pull secret.
func TestExternalRegistryWithPushSecret(t *testing.T) {
	needRoot(t)
	const user, password = "pusher", "push-pass-0123456789"
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600)
	reg, err := registry.Start(context.Background(), "127.0.0.1:0", filepath.Join(t.TempDir(), "registry"), htpasswd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	base := pushBaseTo(t, reg.Addr(), &remote.Auth{Username: user, Password: password})

	s := startServer(t, "", nil)
	if code := s.api("POST", "/secrets", map[string]string{"name": "team-registry", "registryHost": reg.Addr(), "username": user, "password": password}, nil); code != http.StatusCreated {
		t.Fatalf("create secret: %d", code)
	}
	s.stop()
	s.args = []string{"--registry", reg.Addr() + "/team", "--push-secret", "team-registry", "--insecure-registries", reg.Addr()}
	s.start()

	b := s.createCustomImage("e2e-external", map[string]string{"baseImage": base, "pullSecret": "team-registry", "pip": "requests"})
	b = s.waitBuild(b.ID, 3*time.Minute, "succeeded", "failed")
	if b.Status != "succeeded" || !strings.HasPrefix(b.TargetImage, reg.Addr()+"/team/e2e-external:") {
		t.Fatalf("build %+v\n%s", b, s.log(b.ID))
	}
	if strings.Contains(s.log(b.ID), password) {
		t.Error("the registry password is in the build log")
	}
	var img struct {
		PullSecret string `json:"pullSecret"`
		URL        string `json:"url"`
	}
	s.api("GET", "/images/e2e-external", nil, &img)
	if want := b.TargetImage + "@" + b.Digest; img.PullSecret != "team-registry" || img.URL != want {
		t.Errorf("image %+v, want url %s and pull secret team-registry", img, want)
	}
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", user+":"+password, "--format", "{{.Digest}}", "docker://"+b.TargetImage).Output()
	if err != nil || strings.TrimSpace(string(out)) != b.Digest {
		t.Errorf("skopeo with the push credentials: %q %v %s, want %s", out, err, stderrOf(err), b.Digest)
	}
}
