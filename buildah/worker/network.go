package worker

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file gives each build a network of its own. RUN steps get a network
// namespace made for the build, held by a `sleep` child and attached to
// slirp4netns (user-mode networking): they reach the internet through
// slirp's sockets on the host, but never the host's loopback
// (--disable-host-loopback), and iptables rules installed in the namespace
// before slirp4netns attaches it refuse link-local addresses (cloud
// metadata), the host's own addresses and, unless an administrator allows
// them, private ranges. The package mirrors the build uses are opened too,
// each address on its port alone. A RUN step has no CAP_NET_ADMIN, so it
// cannot change the rules. It works the same as root and inside a rootless
// worker's user namespace.
//
// The rules and slirp4netns are set up while buildah starts the build (a
// few process starts that would otherwise delay every build); RUN steps
// wait for them (see stepLog). Until slirp4netns is attached, after the
// rules, the namespace has nothing but its loopback: whatever ran in it
// early would be offline, never outside the policy.

// slirpDNS is slirp4netns's DNS forwarder inside the namespace; RUN steps
// use it, since the host's resolver may sit on a range they cannot reach.
const slirpDNS = "10.0.2.3"

// Ranges RUN steps never reach: link-local (cloud metadata), this host
// (slirp's gateway 10.0.2.2 is the host), loopback; and the private ones
// they reach only when allowed (--build-allow-cidr).
var (
	neverV4   = []string{"169.254.0.0/16", "10.0.2.2/32", "0.0.0.0/8", "127.0.0.0/8"}
	privateV4 = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "224.0.0.0/4", "240.0.0.0/4"}
	neverV6   = []string{"fe80::/10", "::1/128", "::ffff:0:0/96"}
	privateV6 = []string{"fc00::/7", "ff00::/8"}
)

// buildNet is the network namespace of one build.
type buildNet struct {
	holder *exec.Cmd
	slirp  *exec.Cmd
	// ready is closed when the setup has ended, err then says how.
	ready     chan struct{}
	err       error
	closeOnce sync.Once
}

// startBuildNet makes the namespace and returns; the policy, then
// slirp4netns (which also sets the loopback up), are set up in the
// background (Wait). allow lists the CIDRs an administrator opened,
// mirrors the addresses and ports of the package mirrors.
func startBuildNet(allow []string, mirrors []netip.AddrPort) (*buildNet, error) {
	n := &buildNet{holder: exec.Command("sleep", "infinity"), ready: make(chan struct{})}
	n.holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := startOnLockedThread(n.holder); err != nil {
		return nil, fmt.Errorf("build network: %w", err)
	}
	go func() {
		defer close(n.ready)
		if n.err = n.installPolicy(allow, mirrors); n.err == nil {
			n.err = n.startSlirp()
		}
	}()
	return n, nil
}

// Wait waits until the network is ready and says whether it is; a network
// that is not stays offline.
func (n *buildNet) Wait() error {
	<-n.ready
	return n.err
}

// startSlirp attaches slirp4netns and waits until it says it is ready.
func (n *buildNet) startSlirp() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	n.slirp = exec.Command("slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
		"--enable-sandbox", "--enable-seccomp", "--ready-fd=3", strconv.Itoa(n.holder.Process.Pid), "tap0")
	n.slirp.ExtraFiles = []*os.File{w}
	n.slirp.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	n.slirp.Stdout, n.slirp.Stderr = &out, &out
	err = startOnLockedThread(n.slirp)
	w.Close()
	if err != nil {
		return fmt.Errorf("build network: slirp4netns: %w (is Debian's slirp4netns installed?)", err)
	}
	ready := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = fmt.Errorf("no answer in 10 s")
	}
	if err != nil {
		return fmt.Errorf("build network: slirp4netns is not ready: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Path is the namespace's path for buildah's NamespaceOption.
func (n *buildNet) Path() string {
	return fmt.Sprintf("/proc/%d/ns/net", n.holder.Process.Pid)
}

// Close ends slirp4netns and the holder, which ends the namespace, once
// the setup has ended. It may be called more than once, from any
// goroutine; every call returns once both are gone.
func (n *buildNet) Close() {
	n.closeOnce.Do(func() {
		<-n.ready
		for _, c := range []*exec.Cmd{n.slirp, n.holder} {
			if c != nil && c.Process != nil {
				c.Process.Kill()
				c.Wait()
			}
		}
	})
}

// nsCommand is a command to run inside the namespace, and its input.
type nsCommand struct {
	args  []string
	stdin string
}

// run runs commands inside the namespace (only its network namespace), all
// at the same time, and returns their outputs (stdout and stderr).
func (n *buildNet) run(cmds ...nsCommand) ([]string, error) {
	outs := make([]bytes.Buffer, len(cmds))
	var started []*exec.Cmd
	err := n.inNamespace(func() error {
		for i, c := range cmds {
			cmd := exec.Command(c.args[0], c.args[1:]...)
			cmd.Stdin = strings.NewReader(c.stdin)
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			if err := cmd.Start(); err != nil {
				return err
			}
			started = append(started, cmd)
		}
		return nil
	})
	errs := []error{err}
	for i, cmd := range started {
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v: %s", cmds[i].args[0], err, strings.TrimSpace(outs[i].String())))
		}
	}
	texts := make([]string, len(outs))
	for i := range outs {
		texts[i] = outs[i].String()
	}
	return texts, errors.Join(errs...)
}

// inNamespace runs f on an OS thread that has joined the namespace, so that
// the processes f starts begin there (without nsenter) and the sockets it
// opens belong there. The thread is never handed back to the scheduler:
// its goroutine ends locked to it, which ends the thread, so no other code
// ever runs in the namespace. A process f starts must not die with its
// parent thread (Pdeathsig).
func (n *buildNet) inNamespace(f func() error) error {
	ns, err := os.Open(n.Path())
	if err != nil {
		return err
	}
	defer ns.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("joining the build's network namespace: %w", err)
			return
		}
		done <- f()
	}()
	return <-done
}

// installPolicy loads the rules for IPv4 and IPv6, both at the same time.
func (n *buildNet) installPolicy(allow []string, mirrors []netip.AddrPort) error {
	hosts := hostAddresses()
	_, err := n.run(
		nsCommand{args: []string{"iptables-restore"}, stdin: policyRules(false, allow, mirrors, hosts)},
		nsCommand{args: []string{"ip6tables-restore"}, stdin: policyRules(true, allow, mirrors, hosts)},
	)
	if err != nil {
		return fmt.Errorf("build network: %w (is Debian's iptables installed?)", err)
	}
	return nil
}

// Rules reads the OUTPUT rules back, as iptables -S prints them (IPv4 then
// IPv6): how tests check the policy without sending a packet anywhere.
func (n *buildNet) Rules() (string, error) {
	outs, err := n.run(nsCommand{args: []string{"iptables", "-S", "OUTPUT"}}, nsCommand{args: []string{"ip6tables", "-S", "OUTPUT"}})
	if err != nil {
		return "", err
	}
	return outs[0] + outs[1], nil
}

// policyRules is the iptables-restore input of a build's namespace: loopback
// inside the namespace and slirp's DNS allowed; the never ranges and the
// host's own addresses refused (slirp connects from the host, so a host
// address would reach the server's listeners on 0.0.0.0); then the allowed
// CIDRs and the mirrors' TCP ports; then the private ranges refused.
// Everything else (the internet) is allowed. REJECT, not DROP, so that a
// refused connection fails at once.
func policyRules(v6 bool, allow []string, mirrors []netip.AddrPort, hostAddrs []string) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	b.WriteString("-A OUTPUT -o lo -j ACCEPT\n")
	never, private, reject := neverV4, privateV4, "icmp-net-prohibited"
	if v6 {
		never, private, reject = neverV6, privateV6, "icmp6-adm-prohibited"
	} else {
		for _, proto := range []string{"udp", "tcp"} {
			fmt.Fprintf(&b, "-A OUTPUT -d %s/32 -p %s -m %s --dport 53 -j ACCEPT\n", slirpDNS, proto, proto)
		}
	}
	never = append(never[:len(never):len(never)], familyOf(v6, hostAddrs)...)
	for _, c := range never {
		fmt.Fprintf(&b, "-A OUTPUT -d %s -j REJECT --reject-with %s\n", c, reject)
	}
	for _, c := range familyOf(v6, allow) {
		fmt.Fprintf(&b, "-A OUTPUT -d %s -j ACCEPT\n", c)
	}
	for _, m := range mirrors {
		if a := m.Addr(); a.Is6() == v6 {
			fmt.Fprintf(&b, "-A OUTPUT -d %s -p tcp -m tcp --dport %d -j ACCEPT\n", netip.PrefixFrom(a, a.BitLen()), m.Port())
		}
	}
	for _, c := range private {
		fmt.Fprintf(&b, "-A OUTPUT -d %s -j REJECT --reject-with %s\n", c, reject)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// familyOf keeps the CIDRs of one address family.
func familyOf(v6 bool, cidrs []string) []string {
	var out []string
	for _, c := range cidrs {
		if strings.Contains(c, ":") == v6 {
			out = append(out, c)
		}
	}
	return out
}

// hostAddresses lists this host's own addresses as /32 and /128 CIDRs.
func hostAddresses() []string {
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() {
			continue
		}
		if ipn.IP.To4() != nil {
			out = append(out, ipn.IP.String()+"/32")
		} else {
			out = append(out, ipn.IP.String()+"/128")
		}
	}
	return out
}

// spawn runs functions on one OS thread that never exits. The network's
// helper processes die with the thread that started them (Pdeathsig fires
// when the forking thread exits, and Go and buildah retire threads), so they
// are all started from this one.
var spawn = make(chan func())

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the worker
		for f := range spawn {
			f()
		}
	}()
}

// startOnLockedThread starts c from the spawn thread.
func startOnLockedThread(c *exec.Cmd) error {
	done := make(chan error)
	spawn <- func() { done <- c.Start() }
	return <-done
}
