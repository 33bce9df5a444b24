package kube

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"imagehub/buildah/workerspec"
)

// outputGrace is how long the pod's log may still flow after the Job ended
// (or was deleted) before it is cut off.
const outputGrace = 2 * time.Second

// errCancelled is Wait's error for a Job that Cancel deleted, errDetached
// for one that Detach let go.
var (
	errCancelled = errors.New("the build's Job was deleted (cancelled)")
	errDetached  = errors.New("the build's Job is no longer followed (the server stops)")
)

// kubeJob follows one build's Job: the pod's log through the API (the
// pods/log subresource, which the API server proxies from the pod's kubelet)
// into Output, the event lines in it into Events, and the Job's conditions
// for Wait.
type kubeJob struct {
	r       *Runner
	buildID int64
	name    string
	token   string
	// dir is the build's folder on the server, where its notes are kept
	// (reattach.go).
	dir string

	out    *io.PipeReader
	outW   *io.PipeWriter
	events chan workerspec.Event
	// logDone is closed when the log has been read to its end (or cut).
	logDone chan struct{}
	// stopLog cuts the log stream off.
	stopLog context.CancelFunc
	logCtx  context.Context

	cancelled atomic.Bool
	detached  atomic.Bool
	waitOnce  sync.Once
	waitErr   error
}

func (r *Runner) follow(buildID int64, token, dir string) *kubeJob {
	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	j := &kubeJob{
		r: r, buildID: buildID, name: jobName(buildID), token: token, dir: dir,
		out: pr, outW: pw, events: make(chan workerspec.Event, 16), logDone: make(chan struct{}),
		logCtx: ctx, stopLog: stop,
	}
	go j.followLog()
	return j
}

func (j *kubeJob) Output() io.Reader               { return j.out }
func (j *kubeJob) Events() <-chan workerspec.Event { return j.events }

// Cancel deletes the Job in the foreground: Kubernetes stops the pod, then
// deletes the Job and, as its owner, the Secret. It does not wait.
func (j *kubeJob) Cancel() {
	if j.cancelled.Swap(true) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := j.r.deleteBuild(ctx, j.buildID); err != nil && j.r.Logger != nil {
			j.r.Logger.Error("deleting a cancelled build's Job", "build", j.buildID, "err", err)
		}
	}()
}

// Wait waits for the Job to end: complete (nil), failed (its condition's
// reason and message), or deleted; or for Detach. Then it lets the log reach
// its end, and deletes the Secret of a Job that ended, at once rather than
// with the Job: the credentials in it are needed no more.
func (j *kubeJob) Wait() error {
	j.waitOnce.Do(func() {
		j.waitErr = j.waitJob()
		select {
		case <-j.logDone:
		case <-time.After(outputGrace):
			j.stopLog()
			<-j.logDone
		}
		j.stopLog()
		if j.detached.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		j.r.Client.CoreV1().Secrets(j.r.Namespace).Delete(ctx, j.name, metav1.DeleteOptions{})
	})
	return j.waitErr
}

// waitJob looks at the Job every poll until it has ended or is let go.
func (j *kubeJob) waitJob() error {
	tick := time.NewTicker(j.r.poll())
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-tick.C:
			case <-j.logCtx.Done(): // only Detach cuts the log before Wait
				return errDetached
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		job, err := j.r.Client.BatchV1().Jobs(j.r.Namespace).Get(ctx, j.name, metav1.GetOptions{})
		cancel()
		switch {
		case apierrors.IsNotFound(err) && j.cancelled.Load():
			return errCancelled
		case apierrors.IsNotFound(err):
			return errors.New("the build's Job was deleted")
		case err != nil:
			continue // the API server may be restarting: look again
		case job.DeletionTimestamp != nil && j.cancelled.Load():
			return errCancelled
		}
		if done, err := jobEnded(job); done {
			return err
		}
	}
}

// jobEnded reports whether a Job has ended, and how.
func jobEnded(job *batchv1.Job) (bool, error) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, nil
		case batchv1.JobFailed:
			return true, fmt.Errorf("the build's Job failed: %s: %s", c.Reason, c.Message)
		}
	}
	return false, nil
}

// followLog waits for the Job's pod to start its worker, then copies the
// worker's log into Output and its event lines into Events, until the log
// ends (the worker exited) or is cut off.
func (j *kubeJob) followLog() {
	defer close(j.logDone)
	defer close(j.events)
	defer j.outW.Close()
	said := j.replayNotes()
	pod, err := j.waitForWorker(said)
	if err != nil {
		return // the Job ended without a worker; Wait says why
	}
	stream, err := j.r.Client.CoreV1().Pods(j.r.Namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container: workerName, Follow: true,
	}).Stream(j.logCtx)
	if err != nil {
		j.note("", fmt.Sprintf("imagehub: following the log of pod %s: %v", pod, err))
		return
	}
	defer stream.Close()
	br := bufio.NewReaderSize(stream, 64<<10)
	for {
		// A line longer than the buffer passes in pieces, as log: an
		// event line is short.
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			j.logLine(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// logLine passes one line of the worker's log on, as log or as an event.
func (j *kubeJob) logLine(line []byte) {
	logPart, ev, ok := workerspec.ParseLogEvent(j.token, line)
	if !ok {
		j.outW.Write(line)
		return
	}
	if len(logPart) > 0 {
		j.outW.Write(append(logPart, '\n'))
	}
	j.events <- ev
}

// waitForWorker waits until the build's pod has started its worker (or it
// has finished already), and returns the pod's name. Meanwhile it writes why
// the pod waits (an image that cannot be pulled, for one) to the log, once
// per reason (said is the last one told). It gives up when the log is cut
// off (Wait saw the Job end).
func (j *kubeJob) waitForWorker(said string) (string, error) {
	tick := time.NewTicker(j.r.poll())
	defer tick.Stop()
	for {
		pods, err := j.r.Client.CoreV1().Pods(j.r.Namespace).List(j.logCtx, metav1.ListOptions{LabelSelector: buildSelector(j.buildID)})
		if err == nil {
			for _, p := range pods.Items {
				for _, cs := range p.Status.ContainerStatuses {
					if cs.Name != workerName {
						continue
					}
					if cs.State.Running != nil || cs.State.Terminated != nil {
						return p.Name, nil
					}
					if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != said {
						said = w.Reason
						j.note(said, fmt.Sprintf("imagehub: pod %s waits: %s %s", p.Name, w.Reason, w.Message))
					}
				}
			}
		}
		select {
		case <-j.logCtx.Done():
			return "", j.logCtx.Err()
		case <-tick.C:
		}
	}
}
