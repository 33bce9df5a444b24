#!/usr/bin/env bash
# Installs everything imagehub needs to run and to be tested on a fresh Debian 12 machine.
# Idempotent: a second run only checks.
set -euo pipefail
need=(
  gcc libc6-dev              # cgo: go-sqlite3, buildah's chroot isolation and rootless re-exec
  busybox-static debootstrap # offline base images (make base-images)
  uidmap                     # rootless builds: newuidmap/newgidmap
  skopeo                     # tests: an independent client checks what was pushed
  chromium chromium-driver   # tests: the browser test
  ca-certificates
)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# templ generates the Go code of views/; its version is the one in go.mod.
command -v templ >/dev/null || go install github.com/a-h/templ/cmd/templ@v0.3.1100
