package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"imagehub/buildah/kube"
	"imagehub/buildah/queue"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// The builder flags: where builds run. "local" (the default) runs each
// build in a child process; "kubernetes" runs each as a Job (buildah/kube).

const (
	builderLocal      = "local"
	builderKubernetes = "kubernetes"
	// inClusterNamespace is the namespace of the pod the server runs in.
	inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

type builderSettings struct {
	builder     string
	namespace   string
	kubeconfig  string
	workerImage string
	cpu         resource.Quantity
	// syncPullSecrets is the namespace that the pull secrets are mirrored
	// into (kube.PullSecrets); empty: none.
	syncPullSecrets string
}

type builderFlags struct {
	builder, namespace, kubeconfig, workerImage, cpu, syncPullSecrets *string
}

func addBuilderFlags(fs *flag.FlagSet) builderFlags {
	return builderFlags{
		builder:         fs.String("builder", envOr("IMAGEHUB_BUILDER", builderLocal), "where builds run: local (child processes of the server) or kubernetes (a Job per build; needs --registry)"),
		namespace:       fs.String("kube-namespace", os.Getenv("IMAGEHUB_KUBE_NAMESPACE"), "with --builder kubernetes: the namespace of the builds' Jobs; empty: the server's own namespace in a cluster"),
		kubeconfig:      fs.String("kubeconfig", os.Getenv("IMAGEHUB_KUBECONFIG"), "with --builder kubernetes: a kubeconfig file; empty: the in-cluster service account"),
		workerImage:     fs.String("worker-image", os.Getenv("IMAGEHUB_WORKER_IMAGE"), "with --builder kubernetes: the imagehub image the builds' pods run (imagehub build-worker)"),
		cpu:             fs.String("build-cpu", os.Getenv("IMAGEHUB_BUILD_CPU"), "with --builder kubernetes: the CPU each build's pod requests and may use, such as 2 or 1500m; empty: none set"),
		syncPullSecrets: fs.String("sync-pull-secrets", os.Getenv("IMAGEHUB_SYNC_PULL_SECRETS"), "mirror each pull secret into this Kubernetes namespace (where notebooks run) as a kubernetes.io/dockerconfigjson Secret of the same name; uses --kubeconfig or the in-cluster account"),
	}
}

// parse checks the builder flags; registry is --registry, which a cluster's
// pods need (they cannot reach the embedded one).
func (f builderFlags) parse(registry string) (builderSettings, error) {
	s := builderSettings{builder: *f.builder, namespace: *f.namespace, kubeconfig: *f.kubeconfig, workerImage: *f.workerImage,
		syncPullSecrets: *f.syncPullSecrets}
	switch s.builder {
	case builderLocal:
		return s, nil
	case builderKubernetes:
	default:
		return s, fmt.Errorf("--builder %q must be local or kubernetes", s.builder)
	}
	if registry == "" {
		return s, fmt.Errorf("--builder kubernetes needs --registry: the builds' pods cannot reach the embedded registry")
	}
	if s.workerImage == "" {
		return s, fmt.Errorf("--builder kubernetes needs --worker-image, the imagehub image the builds' pods run")
	}
	if *f.cpu != "" {
		q, err := resource.ParseQuantity(*f.cpu)
		if err != nil || q.Sign() <= 0 {
			return s, fmt.Errorf("--build-cpu %q is not an amount of CPU such as 2 or 1500m", *f.cpu)
		}
		s.cpu = q
	}
	if s.namespace == "" && s.kubeconfig == "" {
		if b, err := os.ReadFile(inClusterNamespace); err == nil {
			s.namespace = strings.TrimSpace(string(b))
		}
	}
	if s.namespace == "" {
		return s, fmt.Errorf("--builder kubernetes needs --kube-namespace outside a cluster")
	}
	return s, nil
}

// runner is the queue's Runner for the builder settings. stg is the local
// workers' store; limits.MemoryBytes (--build-memory) is also each build
// pod's memory request and limit.
func (s builderSettings) runner(cfg serveConfig, stg workerspec.Storage, logger *slog.Logger) (queue.Runner, error) {
	if s.builder == builderLocal {
		return queue.LocalRunner{Storage: stg}, nil
	}
	client, err := s.client()
	if err != nil {
		return nil, fmt.Errorf("--builder kubernetes: %w", err)
	}
	r := &kube.Runner{
		Client: client, Namespace: s.namespace, Image: s.workerImage,
		CPU: s.cpu, Deadline: cfg.deadline, Logger: logger,
	}
	if m := cfg.buildLimits.MemoryBytes; m > 0 {
		r.Memory = *resource.NewQuantity(m, resource.BinarySI)
	}
	return r, nil
}

// client reaches the cluster: with --kubeconfig, or as the pod's service
// account.
func (s builderSettings) client() (kubernetes.Interface, error) {
	var rc *rest.Config
	var err error
	if s.kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// pullSecrets is the pull secrets' mirror of --sync-pull-secrets, or nil.
func (s builderSettings) pullSecrets(st *store.Store, logger *slog.Logger) (*kube.PullSecrets, error) {
	if s.syncPullSecrets == "" {
		return nil, nil
	}
	client, err := s.client()
	if err != nil {
		return nil, fmt.Errorf("--sync-pull-secrets: %w", err)
	}
	return kube.NewPullSecrets(client, s.syncPullSecrets, st, logger), nil
}

// startPullSecrets starts the pull secrets' mirror of --sync-pull-secrets,
// which runs until ctx ends.
func (a *app) startPullSecrets(ctx context.Context) error {
	var err error
	if a.pullSecrets, err = a.cfg.builder.pullSecrets(a.store, a.logger); err != nil || a.pullSecrets == nil {
		return err
	}
	go a.pullSecrets.Run(ctx)
	return nil
}

// secretsChanged is what the web layer calls after a pull secret changed.
func (a *app) secretsChanged() func() {
	if a.pullSecrets == nil {
		return nil
	}
	return a.pullSecrets.Notify
}
