package disk

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"

	"imagehub/buildah/registry"
	"imagehub/buildah/workerspec"
	"imagehub/store"
)

// gcChore names the garbage collection in what held builds wait for.
const gcChore = "the registry's garbage collection"

// GCRun is one garbage collection of the embedded registry: when it started,
// how long it took, what it freed, and why it failed, if it did.
type GCRun struct {
	At     time.Time         `json:"at"`
	Took   time.Duration     `json:"took"`
	Result registry.GCResult `json:"result"`
	Error  string            `json:"error,omitempty"`
}

// CollectGarbage asks for the embedded registry's garbage collection. It
// runs from the build queue: queued builds wait from now on, the running ones
// finish, then it runs with no build pushing (it would take a push's blobs
// for garbage), and the queue goes on. It is an ECONFLICT error when builds
// are pushed to another registry, or there is no queue.
func (k *Keeper) CollectGarbage() error {
	if k.cfg.Registry == nil {
		return store.Errorf(store.ECONFLICT, "Builds are pushed to %s, not to the embedded registry: its garbage is collected there.", k.cfg.RegistryPrefix)
	}
	if k.cfg.Queue == nil {
		return store.Errorf(store.ECONFLICT, "This imagehub runs no builds, so it cannot make sure none pushes during a garbage collection.")
	}
	k.cfg.Queue.Do(gcChore, true, k.collect)
	return nil
}

// collect runs the garbage collection and records how it went.
func (k *Keeper) collect(ctx context.Context) error {
	run := GCRun{At: time.Now()}
	res, err := k.cfg.Registry.CollectGarbage(ctx, false)
	run.Took, run.Result = time.Since(run.At), res
	if err != nil {
		run.Error = workerspec.Reason(err)
	} else {
		k.cfg.Logger.Info("collected the registry's garbage", "blobs", res.Blobs, "freed", store.FormatSize(res.Bytes), "took", run.Took.Round(time.Millisecond))
	}
	k.mu.Lock()
	k.lastGC = &run
	k.mu.Unlock()
	k.reportChanged()
	if serr := k.saveState(run); serr != nil {
		k.cfg.Logger.Error("recording the garbage collection", "file", k.cfg.StateFile, "err", serr)
	}
	return err
}

// LastGC is the last garbage collection, nil before the first.
func (k *Keeper) LastGC() *GCRun {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lastGC == nil {
		return nil
	}
	run := *k.lastGC
	return &run
}

// loadState reads the last garbage collection from the state file.
func (k *Keeper) loadState() error {
	if k.cfg.StateFile == "" {
		return nil
	}
	data, err := os.ReadFile(k.cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var run GCRun
	if err := json.Unmarshal(data, &run); err != nil {
		return err
	}
	k.lastGC = &run
	return nil
}

// saveState writes the last garbage collection to the state file, whole.
func (k *Keeper) saveState(run GCRun) error {
	if k.cfg.StateFile == "" {
		return nil
	}
	data, err := json.Marshal(run)
	if err != nil {
		return err
	}
	tmp := k.cfg.StateFile + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, k.cfg.StateFile)
}
