package handlers

import (
	"context"
	"os"

	"imagehub/store"
)

// leftovers is what deleting images leaves behind: their names, and their
// builds (the store deletes the builds with their images), listed before
// the deletion so that their log folders can be removed after it.
type leftovers struct {
	images []string
	builds []*store.Build
}

// leftoversOf lists the builds of the named images.
func (s *Server) leftoversOf(ctx context.Context, images ...string) (leftovers, error) {
	l := leftovers{images: images}
	if s.logs == nil {
		return l, nil
	}
	for _, name := range images {
		bs, err := s.store.ListBuilds(ctx, name)
		if err != nil {
			return l, err
		}
		l.builds = append(l.builds, bs...)
	}
	return l, nil
}

// removeLeftovers removes what deleted images left behind: the log folders
// of their builds that had finished, and, through the disk keeper, their
// tags in the embedded registry and their images in the layer cache.
//
// A build that was still active when it was listed keeps its folder: its
// worker or the queue may still write there, and the server removes folders
// that belong to no build at its next start. Build ids are never reused, so
// a folder left behind cannot become another build's log.
func (s *Server) removeLeftovers(ctx context.Context, l leftovers) {
	for _, b := range l.builds {
		if b.Status.Active() {
			continue
		}
		if err := os.RemoveAll(s.logs.Dir(b.ID)); err != nil {
			s.log.Error("removing a deleted build's log", "build", b.ID, "err", err)
		}
	}
	if s.disk != nil && len(l.images) > 0 {
		s.disk.ImagesDeleted(ctx, l.images...)
	}
}

// groupLeftovers lists the own images of a group, which are deleted with
// the group, and their builds.
func (s *Server) groupLeftovers(ctx context.Context, group string) (leftovers, error) {
	if _, err := s.store.FindGroup(ctx, group); err != nil {
		return leftovers{}, err
	}
	imgs, _, err := s.store.ListImages(ctx, store.ImageFilter{Owner: group})
	if err != nil {
		return leftovers{}, err
	}
	names := make([]string, len(imgs))
	for i, img := range imgs {
		names[i] = img.Name
	}
	return s.leftoversOf(ctx, names...)
}
