#!/usr/bin/env bash
# Builds the control plane that the Kubernetes runner's integration tests start
# (kube-apiserver, kube-controller-manager, etcd) from the versions pinned in
# this module's go.mod, into a cache folder shared by every checkout:
#   ${IMAGEHUB_CACHE:-$HOME/.cache/imagehub}/testcluster/kubernetes-<v>-etcd-<v>/
# and points ./bin at it (the tests look only there: buildah/kube/kubetest).
# A second run with the same versions builds nothing. kube-apiserver takes about
# 5 minutes of two cores, kube-controller-manager 2.5, etcd seconds.
set -euo pipefail
cd "$(dirname "$0")"
# Not the main module's GOFLAGS (its build tags): this module builds as it is pinned.
export CGO_ENABLED=0 GOFLAGS=
kube=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
dir="${IMAGEHUB_CACHE:-$HOME/.cache/imagehub}/testcluster/kubernetes-$kube-etcd-$etcd"
mkdir -p "$dir"
build() { # name package
  if [ -x "$dir/$1" ]; then return; fi
  echo "testcluster: building $1 ($2) into $dir"
  nice -n 15 go build -trimpath -ldflags=-s -o "$dir/$1.tmp" "$2"
  mv "$dir/$1.tmp" "$dir/$1"
}
build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
ln -sfn "$dir" bin
