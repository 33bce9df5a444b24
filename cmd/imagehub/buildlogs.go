package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"imagehub/store"
)

// removeOrphanBuildLogs removes the build folders under dir (the log hub's)
// that belong to no build in the store: builds deleted with their image
// before imagehub removed their logs, or whose folder could not be removed
// then. Before build ids were AUTOINCREMENT such a folder could be found by
// a new build that was given the deleted build's id; removing them at
// start-up, before any build is queued, makes sure no build shows another's
// log.
func removeOrphanBuildLogs(ctx context.Context, st *store.Store, dir string, log *slog.Logger) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	for _, e := range ents {
		id, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || id <= 0 || !e.IsDir() || strconv.FormatInt(id, 10) != e.Name() {
			continue
		}
		switch _, err := st.FindBuild(ctx, id); {
		case err == nil:
			continue
		case store.ErrorCode(err) != store.ENOTFOUND:
			return err
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			log.Error("removing the log folder of a deleted build", "build", id, "err", err)
			continue
		}
		log.Info("removed the log folder of a deleted build", "build", id)
	}
	return nil
}
