// Package kubetest runs a small Kubernetes for tests: a real etcd,
// kube-apiserver and kube-controller-manager (built by
// deploy/kubernetes/testcluster/build.sh, which `make install` runs), and a
// test kubelet (kubelet.go) that runs pods' commands as local processes.
// Everything listens on 127.0.0.1 only, lives in the test's temporary
// folder, and is stopped by the PIDs it started.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is a running control plane.
type Cluster struct {
	// Config reaches the API server as a member of system:masters.
	Config *rest.Config
	// Kubeconfig is a file with Config, for programs.
	Kubeconfig string
	Client     kubernetes.Interface
	dir        string
	procs      []*exec.Cmd
}

// Controllers are the controllers kube-controller-manager runs: the Job
// controller and the garbage collector that the runner relies on, the
// controller that deletes finished Jobs, and the one that gives each
// namespace its default ServiceAccount (pods cannot be admitted without it).
const Controllers = "job,garbagecollector,ttl-after-finished,serviceaccount"

// BinDir is where build.sh leaves the binaries (a link to its cache).
func BinDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "kubernetes", "testcluster", "bin")
}

// Start starts etcd, kube-apiserver and kube-controller-manager, waits
// until the API server is ready and the controllers run, and stops them
// when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := BinDir()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			t.Fatalf("%s is not built (%v): run make testcluster (make test does)", name, err)
		}
	}
	c := &Cluster{dir: t.TempDir()}
	t.Cleanup(func() { c.stop(t) })

	etcdPort, peerPort, apiPort := freePort(t), freePort(t), freePort(t)
	etcdURL := "http://127.0.0.1:" + etcdPort
	peerURL := "http://127.0.0.1:" + peerPort
	c.start(t, filepath.Join(bin, "etcd"),
		"--name", "test", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "test="+peerURL, "--unsafe-no-fsync", "--log-level", "warn")

	saKey, saPub := c.serviceAccountKeys(t)
	token := randomHex(t)
	tokens := filepath.Join(c.dir, "tokens.csv")
	writeFile(t, tokens, token+",test-admin,test-admin-uid,system:masters\n")
	c.start(t, filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", apiPort,
		"--cert-dir", filepath.Join(c.dir, "pki"),
		"--endpoint-reconciler-type", "none",
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
		// The test kubelet serves pod logs on 127.0.0.1 with a certificate
		// of its own, which the API server does not verify (no
		// --kubelet-certificate-authority).
		"--kubelet-preferred-address-types", "InternalIP")

	c.Config = &rest.Config{
		Host: "https://127.0.0.1:" + apiPort, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             100, Burst: 200,
	}
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	c.Client = client
	c.waitReady(t, func(ctx context.Context) error {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) != "ok" {
			err = fmt.Errorf("readyz: %s", body)
		}
		return err
	})

	c.Kubeconfig = filepath.Join(c.dir, "kubeconfig")
	writeFile(t, c.Kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`, c.Config.Host, token))
	c.start(t, filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig, "--controllers", Controllers,
		"--leader-elect=false", "--secure-port", "0",
		"--service-account-private-key-file", saKey)
	// The serviceaccount controller has run once the default namespace has
	// its ServiceAccount.
	c.waitReady(t, func(ctx context.Context) error {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	return c
}

// start starts one of the cluster's programs, its output in a log file of
// the test's folder.
func (c *Cluster) start(t testing.TB, exe string, args ...string) {
	t.Helper()
	name := filepath.Base(exe)
	log, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Pdeathsig: a test binary killed at its timeout leaves no control
	// plane running behind it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	c.procs = append(c.procs, cmd)
}

// waitReady polls ready until it succeeds, for at most a minute (the
// machine may be busy); then it fails the test with the programs' logs.
func (c *Cluster) waitReady(t testing.TB, ready func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.dumpLogs(t)
			t.Fatalf("the test cluster is not ready: %v", err)
		}
		for _, p := range c.procs {
			if p.ProcessState != nil {
				c.dumpLogs(t)
				t.Fatalf("%s exited", p.Path)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dumpLogs logs the end of each program's log.
func (c *Cluster) dumpLogs(t testing.TB) {
	for _, p := range c.procs {
		name := filepath.Base(p.Path)
		b, _ := os.ReadFile(filepath.Join(c.dir, name+".log"))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		t.Logf("%s's log ends:\n%s", name, b)
	}
}

// stop stops the programs in reverse order: SIGTERM to each process group
// it started, SIGKILL after 10 s.
func (c *Cluster) stop(t testing.TB) {
	if t.Failed() {
		c.dumpLogs(t)
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}

// serviceAccountKeys writes the key pair the API server signs and checks
// service account tokens with, and returns the two files.
func (c *Cluster) serviceAccountKeys(t testing.TB) (key, pub string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	key, pub = filepath.Join(c.dir, "sa.key"), filepath.Join(c.dir, "sa.pub")
	writeFile(t, key, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})))
	writeFile(t, pub, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})))
	return key, pub
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
