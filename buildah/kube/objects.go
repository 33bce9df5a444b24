package kube

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/distribution/reference"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"imagehub/buildah/workerspec"
)

// This file builds the two objects of one build, pure functions of the
// runner's settings and the build's spec: the Secret that carries the spec
// (credentials included) and the Job that runs the worker with it.

// Labels on a build's Job, its pod and its Secret. BuildLabel names the
// build; the runner finds a build's objects by it.
const (
	BuildLabel     = "imagehub.io/build"
	componentLabel = "app.kubernetes.io/component"
	managedByLabel = "app.kubernetes.io/managed-by"
)

// Where the pod keeps things. WorkDir is the pod's one emptyDir: the
// worker's store (the layer cache starts empty in each pod) and its
// temporary folder. The test kubelet maps both folders to its own.
const (
	SpecDir        = "/etc/imagehub/build"
	specFile       = "spec.json"
	WorkDir        = "/var/lib/imagehub-build"
	workerName     = "worker"
	tunDevice      = "/dev/net/tun"
	workerUID      = 1000
	terminationSec = 10
)

// jobName is the name of a build's Job and of its Secret.
func jobName(buildID int64) string { return fmt.Sprintf("imagehub-build-%d", buildID) }

func buildLabels(buildID int64) map[string]string {
	return map[string]string{
		BuildLabel:     strconv.FormatInt(buildID, 10),
		componentLabel: "build",
		managedByLabel: "imagehub",
	}
}

// buildSelector selects the objects of one build.
func buildSelector(buildID int64) string {
	return BuildLabel + "=" + strconv.FormatInt(buildID, 10)
}

// managedSelector selects the objects of every build.
const managedSelector = managedByLabel + "=imagehub," + componentLabel + "=build"

// buildSecret is the Secret that carries a build's spec to its pod. The spec
// holds the registry and mirror credentials, so it is never in the Job.
func (r *Runner) buildSecret(spec workerspec.Spec) (*corev1.Secret, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: jobName(spec.BuildID), Namespace: r.Namespace, Labels: buildLabels(spec.BuildID)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{specFile: data},
	}, nil
}

// buildJob is the Job that runs a build's worker: one pod, never retried,
// stopped by Kubernetes at the build's deadline too, and deleted some time
// after it finished.
func (r *Runner) buildJob(buildID int64) *batchv1.Job {
	name := jobName(buildID)
	labels := buildLabels(buildID)
	args := []string{
		"build-worker", "--in-pod",
		"--spec", SpecDir + "/" + specFile,
		"--graph-root", WorkDir + "/storage",
		"--run-root", WorkDir + "/run",
		"--tmp-dir", WorkDir + "/tmp",
	}
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			TTLSecondsAfterFinished: ptr.To(int32(r.ttl().Seconds())),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](terminationSec),
					SecurityContext:               podSecurity(),
					Containers: []corev1.Container{{
						Name:            workerName,
						Image:           r.Image,
						Command:         r.command(),
						Args:            args,
						Resources:       r.resources(),
						SecurityContext: workerSecurity(),
						VolumeMounts: []corev1.VolumeMount{
							{Name: "spec", MountPath: SpecDir, ReadOnly: true},
							{Name: "work", MountPath: WorkDir},
							{Name: "tun", MountPath: tunDevice},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "spec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName: name, DefaultMode: ptr.To[int32](0o440),
						}}},
						{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						// slirp4netns gives each build its network through
						// the node's TUN device.
						{Name: "tun", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
							Path: tunDevice, Type: ptr.To(corev1.HostPathCharDev),
						}}},
					},
				},
			},
		},
	}
	if secs := int64(r.Deadline.Seconds()); secs > 0 {
		job.Spec.ActiveDeadlineSeconds = &secs
	}
	return job
}

// podSecurity runs the pod as an unprivileged user; the Secret's files are
// readable by its group.
func podSecurity() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot: ptr.To(true),
		RunAsUser:    ptr.To[int64](workerUID),
		RunAsGroup:   ptr.To[int64](workerUID),
		FSGroup:      ptr.To[int64](workerUID),
	}
}

// workerSecurity is what rootless buildah needs in a container, and no more
// (the README's "Builds on Kubernetes" says why each is needed): never
// privileged; of the capabilities only SETUID and SETGID, which the setuid
// newuidmap and newgidmap use to map the build's user namespace (and so
// privilege escalation must stay allowed for them); no seccomp and AppArmor
// profile, whose defaults forbid creating user namespaces and mounting in
// them.
func workerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		Privileged:               ptr.To(false),
		AllowPrivilegeEscalation: ptr.To(true),
		Capabilities: &corev1.Capabilities{
			Drop: []corev1.Capability{"ALL"},
			Add:  []corev1.Capability{"SETUID", "SETGID"},
		},
		SeccompProfile:  &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
		AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined},
	}
}

// resources are the build's requests, equal to its limits, so that a build
// gets what it may use.
func (r *Runner) resources() corev1.ResourceRequirements {
	list := corev1.ResourceList{}
	if !r.CPU.IsZero() {
		list[corev1.ResourceCPU] = r.CPU
	}
	if !r.Memory.IsZero() {
		list[corev1.ResourceMemory] = r.Memory
	}
	if len(list) == 0 {
		return corev1.ResourceRequirements{}
	}
	return corev1.ResourceRequirements{Requests: list, Limits: list.DeepCopy()}
}

// cacheRepo is the repository of an image's layer cache, beside the image
// and named after it: a pod's store starts empty, so the worker looks its
// layers up there and pushes new ones (Spec.CacheRepo). One repository per
// image keeps the layers of different owners apart, as the store's
// cache ids do for local builds.
func cacheRepo(target string) (string, error) {
	named, err := reference.ParseNormalizedNamed(target)
	if err != nil {
		return "", fmt.Errorf("the build's target %q: %w", target, err)
	}
	return reference.TrimNamed(named).String() + "-buildcache", nil
}

// ownedBy makes job the owner of secret, so that the Secret goes with the Job.
func ownedBy(secret *corev1.Secret, job *batchv1.Job) {
	secret.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
		BlockOwnerDeletion: ptr.To(true),
	}}
}
