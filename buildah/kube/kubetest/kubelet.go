package kubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/queue"
)

// Kubelet stands in for a node's kubelet, which cannot run on the machines
// the tests run on (cgroup v1, no systemd, no container runtime). It
// registers a Node, binds the pending pods of one namespace to it (there is
// no scheduler either), and runs each pod's one container as a local
// process:
//
//   - the command: Commands maps the container's command[0] to the local
//     command that runs instead (a path and arguments of its own), followed
//     by command[1:] and args;
//   - volumes: each is a folder of the pod's own, which others may pass
//     through (0711) as the user namespaces of a real worker's RUN steps
//     must; a Secret volume holds the Secret's keys as files (mode 0400),
//     an emptyDir starts empty; a hostPath is the host's path itself;
//   - paths: every argument and environment value that is a volume's
//     mountPath, or starts with one and a slash, is rewritten to that
//     volume's folder, since the process sees the machine's file system;
//   - environment: the container's env (literal values only) and PATH;
//   - as root, a mount namespace of its own (private propagation), as a
//     container has; no images, no other isolation, no resource limits, no
//     security context: the process runs as the test's user.
//
// It reports the pod's phase (Running, then Succeeded or Failed with the
// exit code), kills a process whose pod is being deleted (with all it
// started), and then deletes the pod, as a kubelet does. It serves the
// containers' logs on 127.0.0.1 (/containerLogs/NS/POD/CONTAINER, with
// follow) at the address it gives its Node, so that the API server's
// pods/log reaches them.
type Kubelet struct {
	Client    kubernetes.Interface
	Namespace string
	NodeName  string
	Commands  map[string][]string

	dir  string
	t    testing.TB
	mu   sync.Mutex
	pods map[types.UID]*podRun
	// byName finds a pod's run for the log server.
	byName map[string]*podRun
}

// podRun is one pod's process and log.
type podRun struct {
	ns, name  string
	cmd       *exec.Cmd
	mu        sync.Mutex
	log       []byte
	changed   chan struct{} // closed and replaced at each write and at exit
	exited    bool
	killed    bool
	finalized bool // the pod's terminal status was reported
}

// kill kills the pod's process with everything it started, as a container
// runtime kills the pod's cgroup: also what left its process group (a real
// worker's RUN steps do).
func (p *podRun) kill() {
	pid := p.cmd.Process.Pid
	queue.KillTree(pid, func(sig syscall.Signal) error { return syscall.Kill(pid, sig) })
}

func (p *podRun) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, b...)
	close(p.changed)
	p.changed = make(chan struct{})
	return len(b), nil
}

// StartKubelet registers a node and runs the pods of namespace until the
// test ends.
func StartKubelet(t testing.TB, c *Cluster, namespace string, commands map[string][]string) *Kubelet {
	t.Helper()
	k := &Kubelet{
		Client: c.Client, Namespace: namespace, NodeName: "kubetest-node", Commands: commands,
		dir: buildtest.TraversableDir(t), t: t, pods: map[types.UID]*podRun{}, byName: map[string]*podRun{},
	}
	port := k.serveLogs(t)
	k.registerNode(t, port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			k.sync(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		k.killAll()
	})
	return k
}

func (k *Kubelet) registerNode(t testing.TB, port int) {
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.NodeName}}
	node, err := k.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods: resource.MustParse("110"),
	}
	node.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if _, err := k.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// sync does one round: binds pending pods, starts bound ones, stops those
// being deleted.
func (k *Kubelet) sync(ctx context.Context) {
	pods, err := k.Client.CoreV1().Pods(k.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		k.mu.Lock()
		run := k.pods[pod.UID]
		k.mu.Unlock()
		switch {
		case pod.DeletionTimestamp != nil:
			k.stopPod(ctx, pod, run)
		case pod.Spec.NodeName == "":
			k.bind(ctx, pod)
		case pod.Spec.NodeName == k.NodeName && run == nil && !terminal(pod):
			k.startPod(ctx, pod)
		case run != nil:
			k.reportExit(ctx, pod, run)
		}
	}
}

func (k *Kubelet) bind(ctx context.Context, pod *corev1.Pod) {
	err := k.Client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: k.NodeName},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsConflict(err) {
		k.t.Logf("kubetest kubelet: binding %s: %v", pod.Name, err)
	}
}

// startPod prepares the pod's volumes and starts its container's process;
// a pod whose Secret is not there yet waits for the next round.
func (k *Kubelet) startPod(ctx context.Context, pod *corev1.Pod) {
	if len(pod.Spec.Containers) != 1 {
		k.failPod(ctx, pod, "the test kubelet runs pods of one container")
		return
	}
	c := pod.Spec.Containers[0]
	podDir := filepath.Join(k.dir, string(pod.UID))
	if err := os.MkdirAll(podDir, 0o711); err != nil {
		k.failPod(ctx, pod, err.Error())
		return
	}
	mounts, err := k.volumes(ctx, pod, podDir)
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		k.failPod(ctx, pod, err.Error())
		return
	}
	local, ok := k.Commands[firstOf(c.Command)]
	if !ok {
		k.failPod(ctx, pod, fmt.Sprintf("no local command for %q", c.Command))
		return
	}
	argv := append(append(append([]string{}, local...), tail(c.Command)...), c.Args...)
	for i := len(local); i < len(argv); i++ {
		argv[i] = rewrite(argv[i], c.VolumeMounts, mounts)
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			k.failPod(ctx, pod, "the test kubelet takes literal env values only")
			return
		}
		env = append(env, e.Name+"="+rewrite(e.Value, c.VolumeMounts, mounts))
	}
	run := &podRun{ns: pod.Namespace, name: pod.Name, changed: make(chan struct{})}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, podDir
	cmd.Stdout, cmd.Stderr = run, run
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		// A mount namespace of its own, as a container has: what a real
		// worker mounts (its store's layers) goes with the process.
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	if err := cmd.Start(); err != nil {
		k.failPod(ctx, pod, err.Error())
		return
	}
	run.cmd = cmd
	k.mu.Lock()
	k.pods[pod.UID], k.byName[pod.Namespace+"/"+pod.Name] = run, run
	k.mu.Unlock()
	go func() {
		cmd.Wait()
		run.mu.Lock()
		run.exited = true
		close(run.changed)
		run.changed = make(chan struct{})
		run.mu.Unlock()
	}()
	now := metav1.Now()
	k.setStatus(ctx, pod, func(s *corev1.PodStatus) {
		s.Phase, s.HostIP, s.PodIP, s.StartTime = corev1.PodRunning, "127.0.0.1", "127.0.0.1", &now
		s.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name: c.Name, Image: c.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}}
	})
}

// volumes makes the pod's volume folders and returns them by volume name.
func (k *Kubelet) volumes(ctx context.Context, pod *corev1.Pod, podDir string) (map[string]string, error) {
	dirs := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(podDir, "volumes", v.Name)
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, err
		}
		dirs[v.Name] = dir
		switch {
		case v.Secret != nil:
			s, err := k.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			for key, data := range s.Data {
				if err := os.WriteFile(filepath.Join(dir, key), data, 0o400); err != nil {
					return nil, err
				}
			}
		case v.EmptyDir != nil:
		case v.HostPath != nil:
			if _, err := os.Stat(v.HostPath.Path); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			dirs[v.Name] = v.HostPath.Path
		default:
			return nil, fmt.Errorf("volume %s: the test kubelet knows Secrets, emptyDirs and host paths only", v.Name)
		}
	}
	return dirs, nil
}

// rewrite maps a path under one of the container's mount paths to the
// volume's folder.
func rewrite(s string, mounts []corev1.VolumeMount, dirs map[string]string) string {
	for _, m := range mounts {
		if s == m.MountPath || strings.HasPrefix(s, m.MountPath+"/") {
			return dirs[m.Name] + strings.TrimPrefix(s, m.MountPath)
		}
	}
	return s
}

// reportExit reports a pod's end once its process has exited.
func (k *Kubelet) reportExit(ctx context.Context, pod *corev1.Pod, run *podRun) {
	run.mu.Lock()
	exited, finalized := run.exited, run.finalized
	run.mu.Unlock()
	if !exited || finalized {
		return
	}
	code := run.cmd.ProcessState.ExitCode()
	phase, reason := corev1.PodSucceeded, "Completed"
	if code != 0 {
		phase, reason = corev1.PodFailed, "Error"
	}
	if code < 0 { // killed by a signal
		code = 137
	}
	ok := k.setStatus(ctx, pod, func(s *corev1.PodStatus) {
		s.Phase = phase
		for i := range s.ContainerStatuses {
			cs := &s.ContainerStatuses[i]
			var started metav1.Time
			if cs.State.Running != nil {
				started = cs.State.Running.StartedAt
			}
			cs.Ready = false
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: int32(code), Reason: reason, StartedAt: started, FinishedAt: metav1.Now(),
			}}
		}
	})
	if ok {
		run.mu.Lock()
		run.finalized = true
		run.mu.Unlock()
	}
}

// stopPod kills the process of a pod being deleted, reports its end, and
// deletes the pod for good, as a kubelet does when a pod's grace period is
// over (here at once: the test kubelet does not wait for it).
func (k *Kubelet) stopPod(ctx context.Context, pod *corev1.Pod, run *podRun) {
	if run != nil {
		run.mu.Lock()
		if !run.exited && !run.killed {
			run.killed = true
			run.kill()
		}
		exited := run.exited
		run.mu.Unlock()
		if !exited {
			return // the next round reports it
		}
		k.reportExit(ctx, pod, run)
	}
	err := k.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		k.t.Logf("kubetest kubelet: deleting %s: %v", pod.Name, err)
	}
}

func (k *Kubelet) failPod(ctx context.Context, pod *corev1.Pod, msg string) {
	k.t.Logf("kubetest kubelet: pod %s fails: %s", pod.Name, msg)
	k.setStatus(ctx, pod, func(s *corev1.PodStatus) {
		s.Phase, s.Reason, s.Message = corev1.PodFailed, "KubetestError", msg
	})
}

// setStatus changes a pod's status, on its newest version.
func (k *Kubelet) setStatus(ctx context.Context, pod *corev1.Pod, change func(*corev1.PodStatus)) bool {
	pods := k.Client.CoreV1().Pods(pod.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
		}
		change(&cur.Status)
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		k.t.Logf("kubetest kubelet: status of %s: %v", pod.Name, err)
	}
	return err == nil
}

// killAll kills what is still running when the test ends.
func (k *Kubelet) killAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, run := range k.pods {
		run.mu.Lock()
		if !run.exited {
			run.kill()
		}
		run.mu.Unlock()
	}
}

// serveLogs serves the containers' logs over TLS on 127.0.0.1 and returns
// the port.
func (k *Kubelet) serveLogs(t testing.TB) int {
	cert, err := selfSignedCert()
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", k.containerLogs)
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// containerLogs writes a container's log, and with follow=true what comes
// after, until the process has exited.
func (k *Kubelet) containerLogs(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	run := k.byName[r.PathValue("ns")+"/"+r.PathValue("pod")]
	k.mu.Unlock()
	if run == nil {
		http.Error(w, "no such pod on this node", http.StatusNotFound)
		return
	}
	follow := r.URL.Query().Get("follow") == "true"
	w.Header().Set("Content-Type", "text/plain")
	flusher, _ := w.(http.Flusher)
	sent := 0
	for {
		run.mu.Lock()
		chunk, exited, changed := run.log[sent:], run.exited, run.changed
		run.mu.Unlock()
		if len(chunk) > 0 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			sent += len(chunk)
			if flusher != nil {
				flusher.Flush()
			}
		}
		// What was read with exited set is the whole rest: nothing
		// writes after the exit.
		if !follow || exited {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func tail(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s[1:]
}

// selfSignedCert is the log server's certificate, for 127.0.0.1.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest-node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
