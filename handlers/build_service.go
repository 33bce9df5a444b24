package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"imagehub/buildah/recipe"
	"imagehub/store"
)

// checkRecipe validates a recipe as a whole, so every bad line of every list
// is reported at once: the base image is parsed and normalised with the
// containers/image parser, its pull secret must exist, and each package line
// must pass its manager's grammar. It returns the recipe with the base image
// normalised (the package text stays exactly as typed) and the parsed lists.
func (s *Server) checkRecipe(ctx context.Context, r store.Recipe) (store.Recipe, recipe.Packages, error) {
	fields := map[string]string{}
	r.BaseImage = strings.TrimSpace(r.BaseImage)
	pkgs, err := recipe.Parse(recipe.Text{BaseImage: r.BaseImage, Apt: r.Apt, Conda: r.Conda, Pip: r.Pip})
	var re *recipe.RecipeError
	if errors.As(err, &re) {
		for k, v := range re.Fields() {
			fields[k] = v
		}
	} else if err != nil {
		return r, pkgs, err
	}
	if r.BaseImage != "" {
		if ref, err := s.normalize(r.BaseImage); err != nil {
			fields["baseImage"] = sentence(err.Error())
		} else {
			r.BaseImage = ref
		}
	}
	if r.PullSecret != "" {
		if _, _, _, err := s.store.SecretAuth(ctx, r.PullSecret); store.ErrorCode(err) == store.ENOTFOUND {
			fields["buildPullSecret"] = fmt.Sprintf("Unknown secret %q.", r.PullSecret)
		} else if err != nil {
			return r, pkgs, err
		}
	}
	if len(fields) > 0 {
		return r, pkgs, store.Invalid(fields)
	}
	return r, pkgs, nil
}

// queueBuild records a queued build of img and wakes the queue. The target
// tag is a hash of the recipe, so an unchanged recipe finds its image in the
// registry and finishes at once.
func (s *Server) queueBuild(ctx context.Context, img *store.Image, r store.Recipe, pkgs recipe.Packages) (*store.Build, error) {
	if s.registry == "" {
		return nil, store.Errorf(store.ECONFLICT, "This imagehub has no registry to push builds to.")
	}
	target := fmt.Sprintf("%s/%s:%s", s.registry, img.Name, recipe.Tag(r.BaseImage, pkgs))
	b, err := s.store.CreateBuild(ctx, img.Name, r, target)
	if err != nil {
		return nil, err
	}
	if s.builds != nil {
		s.builds.Notify()
	}
	return b, nil
}

// withWaiting fills in what queued builds wait for, when something holds
// the queue (BuildQueue.Waiting), and returns them.
func (s *Server) withWaiting(bs ...*store.Build) []*store.Build {
	if s.builds == nil {
		return bs
	}
	waiting := s.builds.Waiting()
	for _, b := range bs {
		if b != nil && b.Status == store.BuildQueued {
			b.Waiting = waiting
		}
	}
	return bs
}

// cancelBuild stops a build. Without a queue (a server that does not build)
// a queued build is simply marked cancelled.
func (s *Server) cancelBuild(ctx context.Context, id int64) error {
	if s.builds != nil {
		return s.builds.Cancel(ctx, id)
	}
	b, err := s.store.FindBuild(ctx, id)
	if err != nil {
		return err
	}
	if !b.Status.Active() {
		return store.Errorf(store.ECONFLICT, "Build %d has already finished (%s).", id, b.Status)
	}
	return s.store.FinishBuild(ctx, id, store.BuildCancelled, "", "cancelled before it started")
}
