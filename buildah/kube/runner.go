// Package kube runs builds as Kubernetes Jobs: the queue.Runner behind
// `serve --builder kubernetes`. Each build is a batch/v1 Job of one pod that
// runs `imagehub build-worker --in-pod` from the imagehub image; its spec
// (credentials included) reaches the pod in a Secret owned by the Job; the
// server follows the pod's log through the API, and the worker's events are
// lines of that log marked with a token only the worker knows
// (workerspec.LogEventLine). The queue, the build log and the pages do not
// know that the runner is this one.
package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"imagehub/buildah/queue"
	"imagehub/buildah/workerspec"
)

// defaultTTL is how long a finished Job (and its pod and Secret) stays
// before Kubernetes deletes it, when Runner.TTL is zero: long enough to
// look at with kubectl, short enough not to pile up.
const defaultTTL = time.Hour

// Runner starts builds as Jobs in Namespace. Its zero CPU and Memory leave
// the pods without requests and limits.
type Runner struct {
	Client    kubernetes.Interface
	Namespace string
	// Image is the imagehub image the worker runs from (--worker-image).
	Image string
	// Command is the worker's executable in the image; nil means
	// {"imagehub"}. The arguments that make it a worker follow.
	Command []string
	// CPU and Memory are each build's requests and limits
	// (--build-cpu, --build-memory).
	CPU, Memory resource.Quantity
	// Deadline is the build's deadline, the Job's activeDeadlineSeconds: a
	// backstop for the queue's own, should the server be gone.
	Deadline time.Duration
	// TTL is the Job's ttlSecondsAfterFinished; zero means defaultTTL.
	TTL    time.Duration
	Logger *slog.Logger

	// Poll is how often a Job and its pod are looked at; zero means
	// defaultPoll.
	Poll time.Duration
	// newToken makes a build's event token; tests replace it.
	newToken func() string
}

const defaultPoll = 500 * time.Millisecond

var (
	_ queue.Runner     = (*Runner)(nil)
	_ queue.Reattacher = (*Runner)(nil)
	_ queue.Detacher   = (*kubeJob)(nil)
)

func (r *Runner) ttl() time.Duration {
	if r.TTL == 0 {
		return defaultTTL
	}
	return r.TTL
}

func (r *Runner) poll() time.Duration {
	if r.Poll == 0 {
		return defaultPoll
	}
	return r.Poll
}

func (r *Runner) command() []string {
	if r.Command == nil {
		return []string{"imagehub"}
	}
	return r.Command
}

func (r *Runner) token() string {
	if r.newToken != nil {
		return r.newToken()
	}
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Start creates the build's Secret, then its Job, then makes the Job the
// Secret's owner (the Job's uid exists only once it is created), and
// follows the Job. The build's event token is kept in dir too, for Reattach
// after a restart of the server. The Secret carries the build's labels too,
// so that a Secret left without its owner by a crash between the two is
// still found by Reap.
func (r *Runner) Start(ctx context.Context, spec workerspec.Spec, dir string) (queue.Job, error) {
	spec.EventToken = r.token()
	if err := saveToken(dir, spec.EventToken); err != nil {
		return nil, err
	}
	// The pod has its own store and temporary folder (the Job's volumes),
	// no shared package cache, and its layer cache in the registry.
	spec.Storage, spec.TmpDir, spec.PackageCache = workerspec.Storage{}, "", ""
	var err error
	if spec.CacheRepo, err = cacheRepo(spec.Target); err != nil {
		return nil, err
	}
	secret, err := r.buildSecret(spec)
	if err != nil {
		return nil, err
	}
	secrets := r.Client.CoreV1().Secrets(r.Namespace)
	if secret, err = secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the build's Secret: %w", err)
	}
	job, err := r.Client.BatchV1().Jobs(r.Namespace).Create(ctx, r.buildJob(spec.BuildID), metav1.CreateOptions{})
	if err != nil {
		secrets.Delete(context.Background(), secret.Name, metav1.DeleteOptions{})
		return nil, fmt.Errorf("creating the build's Job: %w", err)
	}
	ownedBy(secret, job)
	if _, err := secrets.Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		r.deleteBuild(context.Background(), spec.BuildID)
		return nil, fmt.Errorf("making the Job the owner of its Secret: %w", err)
	}
	return r.follow(spec.BuildID, spec.EventToken, dir), nil
}

// Reap deletes what is left of a build from before a restart of the
// server: its Job (with its pod) and its Secret.
func (r *Runner) Reap(ctx context.Context, buildID int64, dir string) error {
	return r.deleteBuild(ctx, buildID)
}

// Sweep deletes the Jobs still running whose build is not running here:
// whatever started them is gone. Finished Jobs stay until their TTL, for a
// look with kubectl; Secrets without a Job are deleted too.
func (r *Runner) Sweep(ctx context.Context, running func(buildID int64) bool) error {
	jobs, err := r.Client.BatchV1().Jobs(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return err
	}
	var errs []error
	for _, job := range jobs.Items {
		id, err := strconv.ParseInt(job.Labels[BuildLabel], 10, 64)
		if ended, _ := jobEnded(&job); err != nil || ended || running(id) {
			continue
		}
		if r.Logger != nil {
			r.Logger.Info("deleting the Job of a build that is not running", "job", job.Name, "build", id)
		}
		errs = append(errs, r.deleteBuild(ctx, id))
	}
	secrets := r.Client.CoreV1().Secrets(r.Namespace)
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, s := range list.Items {
		id, err := strconv.ParseInt(s.Labels[BuildLabel], 10, 64)
		if err != nil || len(s.OwnerReferences) > 0 || running(id) {
			continue
		}
		if err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteBuild deletes a build's Job in the foreground (its pod first) and
// its Secret; what is gone already is no error.
func (r *Runner) deleteBuild(ctx context.Context, buildID int64) error {
	fg := metav1.DeletePropagationForeground
	err := r.Client.BatchV1().Jobs(r.Namespace).Delete(ctx, jobName(buildID), metav1.DeleteOptions{PropagationPolicy: &fg})
	if apierrors.IsNotFound(err) {
		err = nil
	}
	// Listed, then deleted one by one: what the Role grants is list and
	// delete, not deletecollection.
	var serr error
	secrets := r.Client.CoreV1().Secrets(r.Namespace)
	list, lerr := secrets.List(ctx, metav1.ListOptions{LabelSelector: buildSelector(buildID)})
	if lerr != nil {
		serr = lerr
	} else {
		for _, s := range list.Items {
			if err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				serr = errors.Join(serr, err)
			}
		}
	}
	return errors.Join(err, serr)
}
