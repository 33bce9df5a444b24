package worker

import (
	"errors"

	nettypes "go.podman.io/common/libnetwork/types"
)

// noNetwork is a container-network backend that does nothing. Every RUN step
// of a build joins the network namespace the worker made for the build (see
// network.go), given to buildah by its path, so buildah never sets up a
// network itself; passing this stub keeps it from looking for netavark or
// CNI binaries that this service does not install.
type noNetwork struct{}

// errNoNetwork is what any attempt to set up a container network gets.
var errNoNetwork = errors.New("container networks are not available: each build brings a network namespace of its own")

// Compile-time check that the stub satisfies buildah's interface.
var _ nettypes.ContainerNetwork = noNetwork{}

func (noNetwork) NetworkCreate(n nettypes.Network, _ *nettypes.NetworkCreateOptions) (nettypes.Network, error) {
	return n, errNoNetwork
}

func (noNetwork) NetworkUpdate(string, nettypes.NetworkUpdateOptions) error { return errNoNetwork }

func (noNetwork) NetworkRemove(string) error { return errNoNetwork }

func (noNetwork) NetworkList(...nettypes.FilterFunc) ([]nettypes.Network, error) { return nil, nil }

func (noNetwork) NetworkInspect(string) (nettypes.Network, error) {
	return nettypes.Network{}, errNoNetwork
}

func (noNetwork) Setup(string, nettypes.SetupOptions) (map[string]nettypes.StatusBlock, error) {
	return nil, errNoNetwork
}

func (noNetwork) Teardown(string, nettypes.TeardownOptions) error { return nil }

func (noNetwork) RunInRootlessNetns(func() error) error { return errNoNetwork }

func (noNetwork) RootlessNetnsInfo() (*nettypes.RootlessNetnsInfo, error) {
	return nil, errNoNetwork
}

func (noNetwork) PestoSocketPath() string { return "" }

func (noNetwork) Drivers() []string { return nil }

func (noNetwork) DefaultNetworkName() string { return "none" }

func (noNetwork) NetworkInfo() nettypes.NetworkInfo {
	return nettypes.NetworkInfo{Backend: "none"}
}
