package store

import (
	"encoding/json"
	"time"
)

// Recipe is what a custom image is built from: a base image and three package
// lists, each kept as the text the administrator typed (one package a line), so
// that nothing they wrote is ever lost or reordered by a round trip.
type Recipe struct {
	BaseImage  string `json:"baseImage"`
	PullSecret string `json:"pullSecret,omitempty"`
	Apt        string `json:"apt,omitempty"`
	Conda      string `json:"conda,omitempty"`
	Pip        string `json:"pip,omitempty"`
	// SmokeTest runs the built image's smoke test (pip check and the pip
	// packages' imports) before it is pushed; on unless turned off.
	SmokeTest Toggle `json:"smokeTest"`
}

// Toggle is a setting that is on unless it is turned off: its zero value
// is on, so that a recipe saved before the setting existed has it on. In
// JSON it is true or false; null or absent is on.
type Toggle struct{ off bool }

// NewToggle is a toggle that is on or off.
func NewToggle(on bool) Toggle { return Toggle{off: !on} }

// On reports whether the toggle is on.
func (t Toggle) On() bool { return !t.off }

// MarshalJSON writes the toggle as true or false.
func (t Toggle) MarshalJSON() ([]byte, error) { return json.Marshal(t.On()) }

// UnmarshalJSON reads true, false or null (on).
func (t *Toggle) UnmarshalJSON(data []byte) error {
	var on *bool
	if err := json.Unmarshal(data, &on); err != nil {
		return err
	}
	t.off = on != nil && !*on
	return nil
}

// BuildStatus is where a build is in its life: queued → running → pushing →
// one of the final states.
type BuildStatus string

// The states of a build.
const (
	BuildQueued      BuildStatus = "queued"
	BuildRunning     BuildStatus = "running"
	BuildPushing     BuildStatus = "pushing"
	BuildSucceeded   BuildStatus = "succeeded"
	BuildFailed      BuildStatus = "failed"
	BuildCancelled   BuildStatus = "cancelled"
	BuildInterrupted BuildStatus = "interrupted"
)

// Active reports whether a build in this state may still change. At most
// one build of an image is active (see CreateBuild).
func (s BuildStatus) Active() bool {
	return s == BuildQueued || s == BuildRunning || s == BuildPushing
}

// Build is one attempt to turn an image's recipe into a pushed image.
type Build struct {
	ID          int64       `json:"id"`
	Image       string      `json:"image"`
	Status      BuildStatus `json:"status"`
	Recipe      Recipe      `json:"recipe"`
	TargetImage string      `json:"targetImage"`
	Digest      string      `json:"digest"`
	// BaseDigest is the manifest digest of the base image the build was
	// built on (see SetBuildBase); "" when the build never looked at it.
	BaseDigest string     `json:"baseDigest,omitempty"`
	Error      string     `json:"error"`
	CreatedAt  time.Time  `json:"createdAt"`
	StartedAt  *time.Time `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
	// PrunedAt is when the build's log and pushed tag were deleted, being
	// older than the builds an image keeps them for (see PruneBuilds); nil
	// while it has them.
	PrunedAt *time.Time `json:"prunedAt,omitempty"`
	// PackageCount is how many packages the built image holds (see
	// SucceedBuild and ListPackages); nil when the build has no package list.
	PackageCount *int `json:"packageCount,omitempty"`
	// Progress is how far a running build is (RecordBuildStep), nil before
	// its first step and once it has finished.
	Progress *BuildProgress `json:"progress,omitempty"`
	// Waiting is what a queued build waits for while something holds the
	// queue ("waiting for disk space: …"). The queue says it and the web
	// layer fills it in; the store never keeps it.
	Waiting string `json:"waiting,omitempty"`
}
