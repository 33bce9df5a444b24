// Package remote reads what registries hold, through containers/image:
// normalised references, image configurations and manifests, whether a tag
// exists. It never links the buildah library, so the web layer may use it.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/distribution/registry/api/errcode"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// inspectTimeout bounds a registry lookup whose context has no deadline of
// its own, so that a page asking about an unreachable registry still answers.
const inspectTimeout = 30 * time.Second

// userAgent is how this service introduces itself to registries.
const userAgent = "imagehub"

// NormalizeReference parses an image reference the way containers/image does
// and returns its full form: the registry and "library/" that Docker Hub
// names imply, and ":latest" when neither a tag nor a digest is given, so
// "busybox" becomes "docker.io/library/busybox:latest". Surrounding blanks are
// dropped. The error of a malformed reference is a sentence meant to be shown
// next to the form field it came from.
func NormalizeReference(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("an image reference is required, such as docker.io/library/python:3.12")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return "", errors.New("an image reference cannot contain spaces")
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", referenceError(s, err)
	}
	return reference.TagNameOnly(named).String(), nil
}

// PinDigest returns the reference of ref's repository at digest, without
// its tag ("docker.io/library/debian@sha256:…"): what a pull of it gets is
// exactly the image that was inspected under ref, whatever the registry
// answers later.
func PinDigest(ref, dig string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", err
	}
	d, err := digest.Parse(dig)
	if err != nil {
		return "", fmt.Errorf("pinning %s: %w", ref, err)
	}
	pinned, err := reference.WithDigest(reference.TrimNamed(named), d)
	if err != nil {
		return "", err
	}
	return pinned.String(), nil
}

// referenceError turns a parser error into a sentence for a person.
func referenceError(s string, err error) error {
	switch {
	case errors.Is(err, reference.ErrNameContainsUppercase):
		return errors.New("an image name must be lowercase (only a tag may contain capitals)")
	case errors.Is(err, reference.ErrNameTooLong):
		return fmt.Errorf("an image name must not be longer than %d characters", reference.NameTotalLengthMax)
	case errors.Is(err, reference.ErrTagInvalidFormat):
		return errors.New("the tag is not valid: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'")
	case errors.Is(err, reference.ErrDigestInvalidFormat):
		return errors.New("the digest is not valid: expected sha256: followed by 64 hexadecimal digits")
	case errors.Is(err, reference.ErrReferenceInvalidFormat), errors.Is(err, reference.ErrNameEmpty):
		return fmt.Errorf("%q is not a valid image reference: expected [registry/]name[:tag][@digest]", s)
	}
	return fmt.Errorf("%q is not a valid image reference: %v", s, err)
}

// Auth is a registry credential. It travels to a worker only inside the 0600
// spec file, never on a command line, in a Containerfile or in a log.
type Auth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// ImageInfo describes an image as its registry holds it.
type ImageInfo struct {
	// Reference is the normalised reference that was looked up.
	Reference string
	// Digest is the digest of the manifest (of the list, for a multi-platform image).
	Digest string
	// MediaType is the manifest's media type.
	MediaType string
	// Platforms lists "os/arch[/variant]" for every image the reference offers.
	Platforms []string
	// Size is the config plus the compressed layers of the image this machine
	// would pull (the matching instance of a list), in bytes.
	Size int64
	// User is that image's configured user, "" for root.
	User string
	// OnBuild lists that image's ONBUILD triggers: instructions that a
	// build from it (buildah's included) runs before its own.
	OnBuild []string
}

// Inspect looks an image up in its registry without pulling it: manifest,
// digest, platforms, size, configured user and ONBUILD triggers. Errors are
// the registry's own (unknown manifest, unauthorized, connection refused),
// wrapped only with the reference. insecure allows a registry without a
// valid TLS certificate or plain http. A ctx without a deadline gets one of
// 30 seconds. It is Policy.Inspect without an address policy: credentials
// still never go to a token service on another host.
func Inspect(ctx context.Context, ref string, auth *Auth, insecure bool) (ImageInfo, error) {
	return (*Policy)(nil).Inspect(ctx, ref, auth, insecure)
}

// Inspect is the package's Inspect, with every request of it checked by the
// policy p (see Policy).
func (p *Policy) Inspect(ctx context.Context, ref string, auth *Auth, insecure bool) (ImageInfo, error) {
	norm, err := NormalizeReference(ref)
	if err != nil {
		return ImageInfo{}, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	sys := p.SystemContext(norm, auth, insecure)
	src, err := openSource(ctx, norm, sys)
	if err != nil {
		return ImageInfo{}, err
	}
	defer src.Close()
	raw, mediaType, err := src.GetManifest(ctx, nil)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("reading the manifest of %s: %w", norm, err)
	}
	info := ImageInfo{Reference: norm, MediaType: mediaType}
	dig, err := manifest.Digest(raw)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("digesting the manifest of %s: %w", norm, err)
	}
	info.Digest = dig.String()
	if manifest.MIMETypeIsMultiImage(mediaType) {
		err = describeList(ctx, sys, src, raw, mediaType, &info)
	} else {
		err = describeImage(ctx, sys, src, nil, &info)
	}
	if err != nil {
		return ImageInfo{}, fmt.Errorf("inspecting %s: %w", norm, err)
	}
	return info, nil
}

// TagExists reports whether ref's tag is in its registry and, when it is, the
// digest of its manifest. A registry that answers "unknown manifest" or
// "unknown repository" means the tag does not exist; any other failure is an
// error, so that an unreachable registry is never mistaken for a missing tag.
// Like Inspect, it has no address policy (see Policy.TagExists).
func TagExists(ctx context.Context, ref string, auth *Auth, insecure bool) (string, bool, error) {
	return (*Policy)(nil).TagExists(ctx, ref, auth, insecure)
}

// TagExists is the package's TagExists, with every request of it checked by
// the policy p.
func (p *Policy) TagExists(ctx context.Context, ref string, auth *Auth, insecure bool) (string, bool, error) {
	norm, err := NormalizeReference(ref)
	if err != nil {
		return "", false, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	src, err := openSource(ctx, norm, p.SystemContext(norm, auth, insecure))
	if isNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer src.Close()
	raw, _, err := src.GetManifest(ctx, nil)
	if isNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading the manifest of %s: %w", norm, err)
	}
	dig, err := manifest.Digest(raw)
	if err != nil {
		return "", false, err
	}
	return dig.String(), true, nil
}

// withDefaultTimeout gives ctx the inspect timeout unless it has a deadline.
func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, inspectTimeout)
}

// SystemContext is the containers/image configuration for talking to one
// registry with optional credentials. It checks nothing about where requests
// go: Policy.SystemContext adds that, and keeps credentials from a token
// service on another host.
//
// Without auth the request is anonymous: an empty DockerAuthConfig keeps
// containers/image from looking for credentials in the host's auth files
// (/run/containers/<uid>/auth.json, which belongs to root on a host where
// root has run buildah or podman, and holds credentials that are not ours).
func SystemContext(auth *Auth, insecure bool) *types.SystemContext {
	sys := &types.SystemContext{DockerRegistryUserAgent: userAgent, DockerAuthConfig: &types.DockerAuthConfig{}}
	if auth != nil {
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: auth.Username, Password: auth.Password}
	}
	if insecure {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	return sys
}

// openSource opens a normalised reference in its registry.
func openSource(ctx context.Context, norm string, sys *types.SystemContext) (types.ImageSource, error) {
	ref, err := docker.ParseReference("//" + PullReference(norm))
	if err != nil {
		return nil, err
	}
	return ref.NewImageSource(ctx, sys)
}

// PullReference is the reference to fetch ref by: ref itself, except that a
// reference pinned to a digest that also names a tag ("repo:tag@sha256:…",
// the URL of a built image) is fetched by its digest alone, as Podman and
// Buildah do; containers/image's docker transport refuses both at once, and
// the digest is what says which image it is.
func PullReference(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	_, tagged := named.(reference.NamedTagged)
	digested, pinned := named.(reference.Digested)
	if !tagged || !pinned {
		return ref
	}
	byDigest, err := reference.WithDigest(reference.TrimNamed(named), digested.Digest())
	if err != nil {
		return ref
	}
	return byDigest.String()
}

// describeList fills in the platforms of a manifest list and the size and
// user of the instance this machine would pull (or of the first one, when
// none matches).
func describeList(ctx context.Context, sys *types.SystemContext, src types.ImageSource, raw []byte, mediaType string, info *ImageInfo) error {
	list, err := manifest.ListFromBlob(raw, mediaType)
	if err != nil {
		return err
	}
	for _, d := range list.Instances() {
		inst, err := list.Instance(d)
		if err != nil {
			return err
		}
		if p := inst.ReadOnly.Platform; p != nil {
			info.Platforms = append(info.Platforms, platformString(p.OS, p.Architecture, p.Variant))
		}
	}
	chosen, err := list.ChooseInstance(sys)
	if err != nil {
		if len(list.Instances()) == 0 {
			return nil
		}
		chosen = list.Instances()[0]
	}
	var single ImageInfo
	if err := describeImage(ctx, sys, src, &chosen, &single); err != nil {
		return err
	}
	info.Size, info.User, info.OnBuild = single.Size, single.User, single.OnBuild
	return nil
}

// describeImage fills in the platform, size and user of one image manifest.
func describeImage(ctx context.Context, sys *types.SystemContext, src types.ImageSource, instance *digest.Digest, info *ImageInfo) error {
	img, err := image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, instance))
	if err != nil {
		return err
	}
	config, err := img.OCIConfig(ctx)
	if err != nil {
		return err
	}
	info.Platforms = []string{platformString(config.OS, config.Architecture, config.Variant)}
	info.Size = imageSize(img)
	info.User = config.Config.User
	info.OnBuild, err = onBuild(ctx, img)
	return err
}

// onBuild reads an image's ONBUILD triggers. The OCI image configuration
// has no such field, but buildah reads every base's configuration blob as a
// Docker one whatever its media type, so the triggers are read the same way
// here: encoding/json on the raw blob, with its case-insensitive keys.
func onBuild(ctx context.Context, img types.Image) ([]string, error) {
	blob, err := img.ConfigBlob(ctx)
	if err != nil {
		return nil, err
	}
	var config struct {
		Config *struct {
			OnBuild []string
		} `json:"config"`
	}
	if err := json.Unmarshal(blob, &config); err != nil {
		return nil, fmt.Errorf("reading the image configuration: %w", err)
	}
	if config.Config == nil {
		return nil, nil
	}
	return config.Config.OnBuild, nil
}

// imageSize adds up the config and the layers as stored in the registry.
func imageSize(img types.Image) int64 {
	size := max(img.ConfigInfo().Size, 0)
	for _, l := range img.LayerInfos() {
		size += max(l.Size, 0)
	}
	return size
}

// platformString writes a platform the way people type it: "linux/arm64/v8".
func platformString(os, arch, variant string) string {
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return s
}

// isNotFound reports whether a registry answered that a manifest or the
// whole repository does not exist.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var e errcode.Error
	if errors.As(err, &e) {
		switch e.ErrorCode().Descriptor().Value {
		case "MANIFEST_UNKNOWN", "NAME_UNKNOWN":
			return true
		}
	}
	// A registry that answers 404 without the JSON error body the
	// distribution spec describes.
	return strings.Contains(err.Error(), "HTTP 404 response")
}
