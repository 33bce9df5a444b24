package buildah

// Auth is a registry credential. It travels to a worker only inside the 0600
// spec file, never on a command line, in a Containerfile or in a log.
type Auth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Storage says where the shared containers/storage store lives. All workers
// share one store: its locks make that safe, and it is the layer cache.
type Storage struct {
	GraphRoot string `json:"graphRoot"`
	RunRoot   string `json:"runRoot"`
	// Driver is "overlay" or "vfs"; empty picks overlay where the kernel allows it.
	Driver string `json:"driver,omitempty"`
}

// WorkerSpec is everything one build-worker needs to build and push one image.
// The server writes it to a 0600 file; the worker reads it and deletes the file.
type WorkerSpec struct {
	BuildID   int64    `json:"buildId"`
	Storage   Storage  `json:"storage"`
	TmpDir    string   `json:"tmpDir"`
	BaseImage string   `json:"baseImage"`
	Packages  Packages `json:"packages"`
	// Target is the reference to push, registry/prefix/name:tag.
	Target   string `json:"target"`
	PullAuth *Auth  `json:"pullAuth,omitempty"`
	PushAuth *Auth  `json:"pushAuth,omitempty"`
	// Insecure lists registry hosts that may be reached over plain http.
	Insecure []string `json:"insecure,omitempty"`
}

// Phase is a step of a worker's progress that the server records as the
// build's status.
type Phase string

// The phases a worker reports, in order.
const (
	PhaseBuilding Phase = "building"
	PhasePushing  Phase = "pushing"
	PhaseDone     Phase = "done"
)

// Event is one structured message from a worker to the server, sent on its own
// channel (file descriptor 3 of the worker), apart from the human log.
type Event struct {
	Phase Phase `json:"phase"`
	// Digest of the pushed manifest, with PhaseDone on success.
	Digest string `json:"digest,omitempty"`
	// UpToDate is true when the target tag already existed and nothing was built.
	UpToDate bool `json:"upToDate,omitempty"`
	// Error is a one-line reason, with PhaseDone on failure.
	Error string `json:"error,omitempty"`
}
