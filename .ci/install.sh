#!/usr/bin/env bash
# Installs everything imagehub needs to run and to be tested on a fresh Debian 12 machine.
# Idempotent: a second run only checks.
set -euo pipefail
need=(
  gcc libc6-dev              # cgo: go-sqlite3, buildah's chroot isolation and rootless re-exec
  busybox-static debootstrap # offline base images (make base-images)
  uidmap                     # rootless builds and RUN steps' user namespaces: newuidmap/newgidmap
  runc                       # RUN steps run under runc (OCI isolation); Debian's crun fails on cgroup v1
  slirp4netns iptables       # each build's own network: user-mode networking, and its policy
  skopeo                     # tests: an independent client checks what was pushed
  buildah                    # benchmarks: Debian's buildah 1.28 CLI, the baseline imagehub is compared with
  chromium chromium-driver   # tests: the browser test
  python3                    # tests: smoke.py (the smoke test's script) runs under the host's python3
  ca-certificates
)
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Rootless builds: the system user the service runs as, with subordinate uid/gid ranges that
# newuidmap/newgidmap map into its build user namespace (buildah's tests run a worker as this user).
if ! getent passwd imagehub >/dev/null; then
  $SUDO useradd --system --user-group --home-dir /var/lib/imagehub --create-home \
    --shell /usr/sbin/nologin --comment "imagehub image builds" imagehub
fi
for f in /etc/subuid /etc/subgid; do
  grep -qs '^imagehub:' "$f" || echo "imagehub:100000:65536" | $SUDO tee -a "$f" >/dev/null
done
# slirp4netns opens /dev/net/tun for rootless builds: Debian's udev makes it 0666; some
# machines (containers, VMs without udev) leave it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  $SUDO chmod 0666 /dev/net/tun
fi
# templ generates the Go code of views/; its version is the one in go.mod.
command -v templ >/dev/null || go install github.com/a-h/templ/cmd/templ@v0.3.1100
