package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"imagehub/store"
)

// pullSecretLabel marks the Secrets that PullSecrets keeps; it deletes no
// other.
const pullSecretLabel = "imagehub.io/pull-secret"

// PullSecrets mirrors imagehub's pull secrets into the namespace where
// notebooks run (`--sync-pull-secrets`): each as a
// kubernetes.io/dockerconfigjson Secret of the same name, so that a
// launcher's pods can name the pull secret that the selection API gives.
// It syncs at start, whenever Notify is called, and every Interval.
type PullSecrets struct {
	Client    kubernetes.Interface
	Namespace string
	Store     *store.Store
	// Interval is the longest a change waits; zero means a minute.
	Interval time.Duration
	Logger   *slog.Logger

	notify chan struct{}
}

// NewPullSecrets returns a sync that Run runs.
func NewPullSecrets(client kubernetes.Interface, namespace string, st *store.Store, logger *slog.Logger) *PullSecrets {
	return &PullSecrets{Client: client, Namespace: namespace, Store: st, Logger: logger, notify: make(chan struct{}, 1)}
}

// Notify asks for a sync soon (a secret was created, changed or deleted).
func (p *PullSecrets) Notify() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Run syncs until ctx ends.
func (p *PullSecrets) Run(ctx context.Context) {
	interval := p.Interval
	if interval == 0 {
		interval = time.Minute
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := p.Sync(ctx); err != nil && ctx.Err() == nil {
			p.Logger.Error("syncing pull secrets", "namespace", p.Namespace, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.notify:
		case <-tick.C:
		}
	}
}

// Sync makes the namespace's mirrored Secrets those of the store: created,
// updated where they differ, and deleted when their secret is gone.
func (p *PullSecrets) Sync(ctx context.Context) error {
	secrets, err := p.Store.ListSecrets(ctx)
	if err != nil {
		return err
	}
	api := p.Client.CoreV1().Secrets(p.Namespace)
	existing, err := api.List(ctx, metav1.ListOptions{LabelSelector: pullSecretLabel + "=true"})
	if err != nil {
		return err
	}
	have := map[string]*corev1.Secret{}
	for i := range existing.Items {
		have[existing.Items[i].Name] = &existing.Items[i]
	}
	var errs []error
	for _, sec := range secrets {
		host, user, pass, err := p.Store.SecretAuth(ctx, sec.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want, err := dockerConfigSecret(sec.Name, p.Namespace, host, user, pass)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cur, ok := have[sec.Name]
		delete(have, sec.Name)
		switch {
		case !ok:
			_, err = api.Create(ctx, want, metav1.CreateOptions{})
		case string(cur.Data[corev1.DockerConfigJsonKey]) != string(want.Data[corev1.DockerConfigJsonKey]):
			cur.Data = want.Data
			_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pull secret %s: %w", sec.Name, err))
		}
	}
	for name := range have {
		if err := api.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("pull secret %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// dockerConfigSecret is a pull secret as Kubernetes takes it.
func dockerConfigSecret(name, namespace, host, user, pass string) (*corev1.Secret, error) {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	cfg, err := json.Marshal(map[string]map[string]entry{"auths": {host: {
		Username: user, Password: pass, Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)),
	}}})
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
			pullSecretLabel: "true", managedByLabel: "imagehub",
		}},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: cfg},
	}, nil
}
