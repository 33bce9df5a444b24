package worker

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/buildah/define"
	"go.podman.io/storage/pkg/idtools"
	"go.podman.io/storage/pkg/unshare"
	"golang.org/x/sys/unix"

	"imagehub/buildah/workerspec"
)

// isolation is how a build's RUN steps run, and its smoke test
// (smoke.go): under runc (OCI isolation) in their own PID, IPC, mount, UTS
// and user namespaces, with container root mapped to subordinate ids
// (never the server's uid), and in the build's own network namespace (see
// network.go) with slirp's DNS. They see an empty /sys: sysfs cannot be
// mounted in a user namespace that does not own the network namespace.
// Then the process's own resource limits and the build's secrets (the
// package mirrors' credentials).
type isolation struct {
	kind       define.Isolation
	namespaces define.NamespaceOptions
	network    define.NetworkConfigurationPolicy
	ids        *define.IDMappingOptions
	common     *define.CommonBuildOptions
	// sysMount mounts the empty /sys, as buildah's volume option.
	sysMount string
}

// runIsolation is the isolation of a build's RUN steps.
func runIsolation(env *buildEnv, limits workerspec.Limits, secrets []string) isolation {
	iso := isolation{
		kind:       define.IsolationOCI,
		namespaces: define.NamespaceOptions{{Name: string(specs.UserNamespace)}},
		network:    define.NetworkDisabled, // a base image build has no RUN step
		ids:        &define.IDMappingOptions{UIDMap: env.uids, GIDMap: env.gids},
		common: &define.CommonBuildOptions{
			Ulimit:     processUlimits(limits.Processes),
			DNSServers: []string{slirpDNS},
			Memory:     memoryLimit(limits),
			Secrets:    secrets,
		},
		sysMount: env.emptySys + ":/sys:ro",
	}
	if unshare.IsRootless() {
		iso.kind = define.IsolationOCIRootless
	}
	if env.netns != "" {
		iso.namespaces = append(iso.namespaces, define.NamespaceOption{Name: string(specs.NetworkNamespace), Path: env.netns})
		iso.network = define.NetworkEnabled
	}
	return iso
}

// runUser is the user whose subordinate ids (/etc/subuid, /etc/subgid) RUN
// steps run as when the worker is root; .ci/install.sh creates it.
const runUser = "imagehub"

// runIDMappings maps the ids of RUN steps (0 to 65535, container root
// included) to ids that are not the server's. As root: the subordinate range
// of the imagehub user. In a rootless worker's user namespace, whose id 0 is
// the server's own uid: ids 1 and up, the user's subordinate range.
func runIDMappings() (uids, gids []specs.LinuxIDMapping, err error) {
	if unshare.IsRootless() {
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1, Size: 65536}}
		return m, m, nil
	}
	ids, err := idtools.NewIDMappings(runUser, runUser)
	if err != nil {
		return nil, nil, fmt.Errorf("RUN steps run as subordinate ids of the user %q: %w (add %s:100000:65536 to /etc/subuid and /etc/subgid)", runUser, err, runUser)
	}
	conv := func(in []idtools.IDMap) []specs.LinuxIDMapping {
		var out []specs.LinuxIDMapping
		for _, m := range in {
			out = append(out, specs.LinuxIDMapping{ContainerID: uint32(m.ContainerID), HostID: uint32(m.HostID), Size: uint32(m.Size)})
		}
		return out
	}
	return conv(ids.UIDs()), conv(ids.GIDs()), nil
}

// processUlimits pins the open-files and processes limits of RUN steps to
// this process's own. buildah would otherwise raise them to 1048576, which
// fails without CAP_SYS_RESOURCE (rootless, or a sandbox with a lower hard
// limit). A positive processes lowers the processes limit to it.
func processUlimits(processes int) []string {
	var limits []string
	for name, resource := range map[string]int{"nofile": unix.RLIMIT_NOFILE, "nproc": unix.RLIMIT_NPROC} {
		var rl unix.Rlimit
		if err := unix.Getrlimit(resource, &rl); err != nil {
			continue
		}
		if name == "nproc" && processes > 0 && uint64(processes) < rl.Max {
			rl.Cur, rl.Max = uint64(processes), uint64(processes)
		}
		if rl.Max < define.RLimitDefaultValue {
			limits = append(limits, fmt.Sprintf("%s=%d:%d", name, rl.Cur, rl.Max))
		}
	}
	slices.Sort(limits)
	return limits
}

// memoryLimit is the cgroup memory limit of RUN steps: none in a rootless
// worker, which cannot create a cgroup on cgroup v1 (runc would refuse to
// start the step).
func memoryLimit(l workerspec.Limits) int64 {
	if unshare.IsRootless() {
		return 0
	}
	return l.MemoryBytes
}
