package handlers

import (
	"context"
	"os"

	"imagehub/store"
)

// buildsOf lists the builds of the named images, so that their log folders
// can be removed once the images are deleted (the store deletes the builds
// with their image).
func (s *Server) buildsOf(ctx context.Context, images ...string) ([]*store.Build, error) {
	if s.logs == nil {
		return nil, nil
	}
	var out []*store.Build
	for _, name := range images {
		bs, err := s.store.ListBuilds(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

// removeBuildLogs removes the log folders of deleted builds that had
// finished. A build that was still active when it was listed keeps its
// folder: its worker or the queue may still write there, and the server
// removes folders that belong to no build at its next start. Build ids are
// never reused, so a folder left behind cannot become another build's log.
func (s *Server) removeBuildLogs(builds []*store.Build) {
	for _, b := range builds {
		if b.Status.Active() {
			continue
		}
		if err := os.RemoveAll(s.logs.Dir(b.ID)); err != nil {
			s.log.Error("removing a deleted build's log", "build", b.ID, "err", err)
		}
	}
}

// groupBuilds lists the builds of a group's own images, which are deleted
// with the group.
func (s *Server) groupBuilds(ctx context.Context, group string) ([]*store.Build, error) {
	if s.logs == nil {
		return nil, nil
	}
	if _, err := s.store.FindGroup(ctx, group); err != nil {
		return nil, err
	}
	imgs, _, err := s.store.ListImages(ctx, store.ImageFilter{Owner: group})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(imgs))
	for i, img := range imgs {
		names[i] = img.Name
	}
	return s.buildsOf(ctx, names...)
}
