package kube

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"imagehub/buildah/queue"
)

// This file lets a build's Job outlive the server (queue.Reattacher): a
// server that stops lets go of the Job (Detach), and the next one follows it
// again (Reattach) from the pod's log, read from its start. The queue leaves
// out the lines the build's log holds already; for that the Job's output
// must come again exactly as it came the first time, so the lines the runner
// adds to it (why the pod waits) are kept in the build's folder and come
// first again. The event token is kept there too, since the Secret that
// also holds it is deleted once the Job ends, perhaps before the server
// recorded the end.

const (
	tokenFile = "kube-event-token"
	notesFile = "kube-notes.jsonl"
)

func saveToken(dir, token string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("the build's folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, tokenFile), []byte(token), 0o600); err != nil {
		return fmt.Errorf("keeping the build's event token: %w", err)
	}
	return nil
}

// Reattach follows again the Job of a build started by an earlier run of
// the server. A Job that is gone, or being deleted (cancelled or reaped),
// is not found. A Job that ended meanwhile is followed all the same: its
// pod's log, events and end are there until its TTL.
func (r *Runner) Reattach(ctx context.Context, buildID int64, dir string) (queue.Job, bool, error) {
	job, err := r.Client.BatchV1().Jobs(r.Namespace).Get(ctx, jobName(buildID), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("looking for the build's Job: %w", err)
	case job.DeletionTimestamp != nil:
		return nil, false, nil
	}
	token, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		return nil, false, fmt.Errorf("the build's event token: %w", err)
	}
	return r.follow(buildID, string(token), dir), true, nil
}

// Detach stops following the Job without deleting it: the log is cut off,
// Events close and Wait returns errDetached, leaving the Secret to the pod.
func (j *kubeJob) Detach() {
	j.detached.Store(true)
	j.stopLog()
}

// note is a line the runner adds to the build's output; reason is why the
// pod waits, when that is what it says.
type note struct {
	Reason string `json:"reason,omitempty"`
	Line   string `json:"line"`
}

// note adds a line to the output, kept first in the build's folder: a line
// that reached the log is then sure to come again after a restart.
func (j *kubeJob) note(reason, line string) {
	if b, err := json.Marshal(note{Reason: reason, Line: line}); err == nil {
		if err := appendFile(filepath.Join(j.dir, notesFile), append(b, '\n')); err != nil && j.r.Logger != nil {
			j.r.Logger.Error("keeping a line of a build's log", "build", j.buildID, "err", err)
		}
	}
	fmt.Fprintln(j.outW, line)
}

// replayNotes writes the lines that an earlier follower of the Job added to
// its output (none for a Job just started), and returns the last reason the
// pod waited for.
func (j *kubeJob) replayNotes() string {
	f, err := os.Open(filepath.Join(j.dir, notesFile))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) && j.r.Logger != nil {
			j.r.Logger.Error("reading the lines added to a build's log", "build", j.buildID, "err", err)
		}
		return ""
	}
	defer f.Close()
	said := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var n note
		if json.Unmarshal(sc.Bytes(), &n) != nil {
			continue // a line cut by a crash, which never reached the log
		}
		if n.Reason != "" {
			said = n.Reason
		}
		fmt.Fprintln(j.outW, n.Line)
	}
	return said
}

func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}
