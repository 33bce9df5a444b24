package worker

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"imagehub/buildah/buildtest"
	"imagehub/buildah/recipe"
	"imagehub/buildah/workerspec"
)

// The isolation tests play a hostile base image: its apt-get, run by a RUN
// step, looks around the machine it was built on and prints what it found.
// Every probe sends packets to 127.0.0.1 only (and to slirp's 10.0.2.2, the
// host as seen from inside the build's own namespace).

// hostileProbe is the base image's apt-get. It counts the processes it can
// see, looks for IMAGEHUB_ variables in every environment it can read, tries
// the test's loopback listener (directly and through slirp's gateway), reads
// the secret file of the test's "data folder" and the server's own /proc
// entry, prints the id mapping it runs under, and looks for the worker's
// event pipe (file descriptor 3).
func hostileProbe(port string, secretPath string, serverPid int) string {
	return fmt.Sprintf(`#!/bin/sh
echo "probe: processes $(ls -d /proc/[0-9]* | wc -l)"
echo "probe: imagehub-vars $(cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' | grep -c IMAGEHUB_)"
wget -q -T 3 -O /dev/null http://127.0.0.1:%[1]s/ 2>/dev/null && echo "probe: loopback reached" || echo "probe: loopback refused"
wget -q -T 3 -O /dev/null http://10.0.2.2:%[1]s/ 2>/dev/null && echo "probe: gateway reached" || echo "probe: gateway refused"
cat %[2]s >/dev/null 2>&1 && echo "probe: secret read" || echo "probe: secret unreadable"
test -e /proc/%[3]d/environ && echo "probe: server visible" || echo "probe: server invisible"
echo "probe: uid_map $(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
test -e /proc/$$/fd/3 && echo "probe: fd3 open" || echo "probe: fd3 closed"
dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null && echo "probe: 100M allocated" || echo "probe: 100M refused"
(i=0; while [ $i -lt 80 ]; do sleep 5 & i=$((i+1)); echo $i >/tmp/forked; done) 2>/dev/null
read n </tmp/forked; echo "probe: forks $n"
`, port, secretPath, serverPid)
}

// secretFile stands for the data folder: a 0711 folder with a 0600 key.
func secretFile(t *testing.T) string {
	t.Helper()
	dir := buildtest.TraversableDir(t)
	path := filepath.Join(dir, "secret.key")
	if err := os.WriteFile(path, []byte("TOPSECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkProbe reads the probe's report from a build log. hostUID is the host
// id container root must map to.
func checkProbe(t *testing.T, log string, hits *atomic.Int64, hostUID int) {
	t.Helper()
	want := []string{
		"probe: imagehub-vars 0", "probe: loopback refused", "probe: gateway refused",
		"probe: secret unreadable", "probe: server invisible", "probe: fd3 closed",
		fmt.Sprintf("probe: uid_map 0 %d 65536", hostUID),
	}
	for _, w := range want {
		if !strings.Contains(log, w+"\n") {
			t.Errorf("the RUN step's probe lacks %q", w)
		}
	}
	m := regexp.MustCompile(`probe: processes (\d+)`).FindStringSubmatch(log)
	if n, _ := strconv.Atoi(m[len(m)-1]); m == nil || n > 6 {
		t.Errorf("the RUN step sees %v processes, want its own few (a private PID namespace)", m)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback listener was reached %d times", n)
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}

// TestBuildIsolationRoot runs a hostile base's RUN step from a root worker.
func TestBuildIsolationRoot(t *testing.T) {
	buildtest.NeedRoot(t)
	t.Setenv("IMAGEHUB_SECRET_KEY", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	addr, hits := buildtest.Listener(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	probe := hostileProbe(port, secretFile(t), os.Getpid())
	reg, st := buildtest.Registry(t, ""), newTestStorage(t)
	base, _ := pushTestBase(t, reg, st, testBase{name: "hostile/busybox", extra: map[string]string{"/usr/bin/apt-get": probe}})
	spec := testSpec(t, 401, st, reg, base, "hostile/built:1", recipe.Packages{Apt: []string{"probe"}})
	spec.Limits = workerspec.Limits{MemoryBytes: 64 << 20, Processes: 40}
	_, log, _, err := runTestWorker(t, t.Context(), spec)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	checkProbe(t, log, hits, 100000)
	if !strings.Contains(log, "probe: 100M refused\n") {
		t.Errorf("a RUN step allocated 100 MiB under a 64 MiB limit")
	}
	m := regexp.MustCompile(`probe: forks (\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no fork count in the log:\n%s", log)
	}
	if n, _ := strconv.Atoi(m[1]); n > 40 {
		t.Errorf("a RUN step had %d processes under a limit of 40", n)
	}
}

// TestBuildIsolationRootless runs the same probe from a rootless worker,
// as the user imagehub: container root maps to its subordinate ids, not to
// the user itself.
func TestBuildIsolationRootless(t *testing.T) {
	buildtest.NeedRoot(t)
	u, err := user.Lookup("imagehub")
	if err != nil {
		t.Skip("no user imagehub: .ci/install.sh creates it, with /etc/subuid and /etc/subgid ranges")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	rootUsedBuildah(t)
	addr, hits := buildtest.Listener(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	reg := buildtest.Registry(t, "")
	dir, exe := rootlessDir(t, uid, gid)
	probe := hostileProbe(port, secretFile(t), os.Getpid())
	base, _ := pushTestBase(t, reg, newTestStorage(t), testBase{name: "hostile/rootless", extra: map[string]string{"/usr/bin/apt-get": probe}})
	pkgs := recipe.Packages{Apt: []string{"probe"}}
	spec := workerspec.Spec{
		BuildID: 402, TmpDir: filepath.Join(dir, "tmp"), BaseImage: base, Packages: pkgs,
		Storage:  workerspec.Storage{GraphRoot: filepath.Join(dir, "storage", "graph"), RunRoot: filepath.Join(dir, "storage", "run")},
		Target:   reg.Addr() + "/hostile/rootless-built:1",
		Insecure: []string{reg.Addr()}, Owner: "system",
	}
	for _, d := range []string{spec.TmpDir, filepath.Dir(spec.Storage.GraphRoot)} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		chownAll(t, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, d)
	}
	env := append(rootlessEnv(u), "IMAGEHUB_SECRET_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	c := startChildWorker(t, spec, childOptions{
		exe: exe, dir: dir, env: env,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
	})
	if err := c.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("rootless worker: %v\n%s", err, c.log())
	}
	// uid_map is read from inside the worker's user namespace, where the
	// user itself is 0 and its first subordinate id is 1 (TestRootlessWorker
	// checks that map): container root is a subordinate id, never the user.
	checkProbe(t, c.log(), hits, 1)
}

// rootUsedBuildah makes this host look like one where root has run buildah
// or podman: /run/containers/0/auth.json belongs to root, in 0700 folders. A
// rootless worker that read the default auth file would fail with
// "permission denied". The folders are removed again only if this test made
// them.
func rootUsedBuildah(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/run/containers"); err == nil {
		return // there already: the rootless test runs against it as it is
	}
	if err := os.MkdirAll("/run/containers/0", 0o700); err != nil {
		t.Skipf("cannot make /run/containers: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll("/run/containers") })
	if err := os.WriteFile("/run/containers/0/auth.json", []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBuildNetworkPolicy reads back the rules of a build's network
// namespace (and sees its loopback up): link-local, loopback and this host's own addresses refused,
// private ranges refused unless allowed, a package mirror's port open, the
// internet open. Nothing is sent anywhere: the rules are read, not probed.
func TestBuildNetworkPolicy(t *testing.T) {
	buildtest.NeedRoot(t)
	mirrors := []netip.AddrPort{netip.MustParseAddrPort("192.168.7.8:3142"), netip.MustParseAddrPort("[fd34::5]:443")}
	n, err := startBuildNet([]string{"10.20.0.0/16", "fd12::/16"}, mirrors)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Wait(); err != nil {
		t.Fatal(err)
	}
	rules, err := n.Rules()
	if err != nil {
		t.Fatal(err)
	}
	order := func(a, b string) {
		t.Helper()
		i, j := strings.Index(rules, a), strings.Index(rules, b)
		if i < 0 || j < 0 || i > j {
			t.Errorf("want %q before %q in the rules:\n%s", a, b, rules)
		}
	}
	order("-A OUTPUT -d 10.0.2.3/32 -p udp -m udp --dport 53 -j ACCEPT", "-A OUTPUT -d 169.254.0.0/16 -j REJECT")
	order("-A OUTPUT -d 169.254.0.0/16 -j REJECT", "-A OUTPUT -d 10.20.0.0/16 -j ACCEPT")
	order("-A OUTPUT -d 10.0.2.2/32 -j REJECT", "-A OUTPUT -d 10.20.0.0/16 -j ACCEPT")
	order("-A OUTPUT -d 10.20.0.0/16 -j ACCEPT", "-A OUTPUT -d 10.0.0.0/8 -j REJECT")
	order("-A OUTPUT -d 10.0.0.0/8 -j REJECT", "-A OUTPUT -d 192.168.0.0/16 -j REJECT")
	order("-A OUTPUT -d fe80::/10 -j REJECT", "-A OUTPUT -d fd12::/16 -j ACCEPT")
	order("-A OUTPUT -d fd12::/16 -j ACCEPT", "-A OUTPUT -d fc00::/7 -j REJECT")
	order("-A OUTPUT -d 10.0.2.2/32 -j REJECT", "-A OUTPUT -d 192.168.7.8/32 -p tcp -m tcp --dport 3142 -j ACCEPT")
	order("-A OUTPUT -d 192.168.7.8/32 -p tcp -m tcp --dport 3142 -j ACCEPT", "-A OUTPUT -d 192.168.0.0/16 -j REJECT")
	order("-A OUTPUT -d fd34::5/128 -p tcp -m tcp --dport 443 -j ACCEPT", "-A OUTPUT -d fc00::/7 -j REJECT")
	for _, h := range hostAddresses() {
		if !strings.Contains(rules, "-A OUTPUT -d "+h+" -j REJECT") {
			t.Errorf("this host's address %s is not refused:\n%s", h, rules)
		}
	}
	if !strings.Contains(rules, "-P OUTPUT ACCEPT") {
		t.Errorf("the internet is not open:\n%s", rules)
	}
	lo, err := n.run(nsCommand{args: []string{"ip", "-o", "link", "show", "lo"}})
	if err != nil || !regexp.MustCompile(`<[A-Z_,]*\bUP\b`).MatchString(lo[0]) {
		t.Errorf("the namespace's loopback is not up (%v): %s", err, lo)
	}
}

// TestBuildNetworkStaysOfflineWhenSlirpFails starts a build's network where
// slirp4netns cannot be found: the setup fails and says why, the rules are
// in place anyway (they come first), and the namespace has no way out.
func TestBuildNetworkStaysOfflineWhenSlirpFails(t *testing.T) {
	buildtest.NeedRoot(t)
	bin := t.TempDir()
	for _, name := range []string{"sleep", "iptables-restore", "ip6tables-restore", "iptables", "ip6tables", "ip"} {
		path, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("no %s: %v", name, err)
		}
		if err := os.Symlink(path, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	n, err := startBuildNet(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Wait(); err == nil || !strings.Contains(err.Error(), "slirp4netns") {
		t.Errorf("Wait = %v, want slirp4netns's failure", err)
	}
	if rules, err := n.Rules(); err != nil || !strings.Contains(rules, "-A OUTPUT -d 169.254.0.0/16 -j REJECT") {
		t.Errorf("the rules are not in place (%v):\n%s", err, rules)
	}
	links, err := n.run(nsCommand{args: []string{"ip", "-o", "link"}})
	if err != nil || strings.Count(strings.TrimSpace(links[0]), "\n") != 0 || !strings.Contains(links[0], ": lo:") {
		t.Errorf("the namespace has more than its loopback (%v):\n%s", err, links)
	}
}
