//go:build tools

// The commands build.sh builds; imported here so that go mod tidy keeps what
// they need in go.sum.
package testcluster

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)
