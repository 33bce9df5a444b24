package main

import (
	"os"
	"strings"
	"testing"

	"imagehub/buildah/kube"
	"imagehub/buildah/queue"
	"imagehub/buildah/workerspec"
)

func TestParseServeFlagsBuilder(t *testing.T) {
	c, err := parseServeFlags(nil)
	if err != nil || c.builder.builder != builderLocal {
		t.Fatalf("default: %q, %v; want local", c.builder.builder, err)
	}
	if r, err := c.builder.runner(c, workerspec.Storage{}, nil); err != nil {
		t.Error(err)
	} else if _, ok := r.(queue.LocalRunner); !ok {
		t.Errorf("the default runner is a %T", r)
	}
	kubeArgs := []string{"--builder", "kubernetes", "--registry", "registry.example/imagehub", "--worker-image", "registry.example/imagehub:1",
		"--kube-namespace", "builds", "--build-cpu", "1500m", "--build-memory", "4GiB"}
	for _, tc := range []struct {
		drop, bad string // drop the flag drop, or give it the value bad
		want      string
	}{
		{drop: "--registry", want: "needs --registry"},
		{drop: "--worker-image", want: "needs --worker-image"},
		{drop: "--kube-namespace", want: "needs --kube-namespace"},
		{bad: "--build-cpu", want: "--build-cpu"},
		{bad: "--builder", want: "must be local or kubernetes"},
	} {
		var args []string
		for i := 0; i < len(kubeArgs); i += 2 {
			switch kubeArgs[i] {
			case tc.drop:
			case tc.bad:
				args = append(args, kubeArgs[i], "-1")
			default:
				args = append(args, kubeArgs[i], kubeArgs[i+1])
			}
		}
		if _, err := parseServeFlags(args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", args, err, tc.want)
		}
	}

	kubeconfig := t.TempDir() + "/kubeconfig"
	err = os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	c, err = parseServeFlags(append(kubeArgs, "--kubeconfig", kubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.builder.runner(c, workerspec.Storage{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, ok := r.(*kube.Runner)
	if !ok || kr.Namespace != "builds" || kr.CPU.String() != "1500m" || kr.Memory.String() != "4Gi" || kr.Image != "registry.example/imagehub:1" {
		t.Errorf("runner %T %+v", r, r)
	}
}
