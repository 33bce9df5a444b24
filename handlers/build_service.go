package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/labstack/echo/v4"

	"imagehub/buildah"
	"imagehub/store"
)

// checkRecipe validates a recipe as a whole, so every bad line of every list
// is reported at once: the base image is parsed and normalised with the
// containers/image parser, its pull secret must exist, and each package line
// must pass its manager's grammar. It returns the recipe with the base image
// normalised (the package text stays exactly as typed) and the parsed lists.
func (s *Server) checkRecipe(ctx context.Context, r store.Recipe) (store.Recipe, buildah.Packages, error) {
	fields := map[string]string{}
	r.BaseImage = strings.TrimSpace(r.BaseImage)
	pkgs, err := buildah.ParsePackages(r)
	var re *buildah.RecipeError
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

// customImage prepares img to be created as a custom image built from r: it
// has no URL until its first build succeeds, and it is pulled with the push
// secret of the registry it will be pushed to.
func (s *Server) customImage(img *store.Image, r store.Recipe) error {
	if img.URL != "" || img.UseGPUURL {
		return store.Invalid(map[string]string{"url": "A custom image gets its URL from its build; leave the URL empty."})
	}
	img.Recipe, img.PullSecret = &r, s.pushSecret
	return nil
}

// createCustomImage validates the image and its recipe together, creates the
// image and queues its first build. extra holds the caller's own reasons to
// refuse (a form's toggles, a secret the caller may not use): they are
// reported together with the others, and nothing is created. When the build
// cannot be recorded the image is removed again, so that no half-made custom
// image stays behind.
func (s *Server) createCustomImage(ctx context.Context, img *store.Image, r store.Recipe, extra map[string]string) (*store.Build, error) {
	r, pkgs, rerr := s.checkRecipe(ctx, r)
	if store.ErrorCode(rerr) == store.EINTERNAL {
		return nil, rerr
	}
	err := s.customImage(img, r)
	if err == nil {
		err = s.prepareImage(img)
	}
	err = withReasons(withReasons(err, store.ErrorFields(rerr)), extra)
	if err != nil {
		return nil, err
	} else if rerr != nil {
		return nil, rerr
	}
	if err := s.store.CreateImage(ctx, img); err != nil {
		return nil, err
	}
	b, err := s.queueBuild(ctx, img, r, pkgs)
	if err != nil {
		if derr := s.store.DeleteImage(ctx, img.Name); derr != nil {
			s.log.Error("remove image after failed build", "image", img.Name, "err", derr)
		}
		return nil, err
	}
	return b, nil
}

// rebuild queues a new build of a custom image, from r when given (which
// then becomes the image's recipe) or else from its current recipe. While
// another build of the image waits or runs, the store refuses it (409).
// extra are the caller's own reasons to refuse, reported with the recipe's.
func (s *Server) rebuild(ctx context.Context, name string, r *store.Recipe, extra map[string]string) (*store.Build, error) {
	img, err := s.store.FindImage(ctx, name)
	if err != nil {
		return nil, err
	}
	if img.Recipe == nil {
		return nil, store.Errorf(store.ECONFLICT, "Image %q is not a custom image: it has no recipe to build.", name)
	}
	recipe := *img.Recipe
	if r != nil {
		recipe = *r
	}
	recipe, pkgs, err := s.checkRecipe(ctx, recipe)
	if err = withReasons(err, extra); err != nil {
		return nil, err
	}
	return s.queueBuild(ctx, img, recipe, pkgs)
}

// queueBuild records a queued build of img and wakes the queue. The target
// tag is a hash of the recipe, so an unchanged recipe finds its image in the
// registry and finishes at once.
func (s *Server) queueBuild(ctx context.Context, img *store.Image, r store.Recipe, pkgs buildah.Packages) (*store.Build, error) {
	if s.registry == "" {
		return nil, store.Errorf(store.ECONFLICT, "This imagehub has no registry to push builds to.")
	}
	target := fmt.Sprintf("%s/%s:%s", s.registry, img.Name, buildah.RecipeTag(r.BaseImage, pkgs))
	b, err := s.store.CreateBuild(ctx, img.Name, r, target)
	if err != nil {
		return nil, err
	}
	if s.builds != nil {
		s.builds.Notify()
	}
	return b, nil
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

// secretReasons refuses a pull secret that someone other than an
// administrator names. A secret holds an administrator's registry
// credentials; a group admin may keep the one an administrator put on their
// image or recipe (kept), but may not choose another.
func secretReasons(c echo.Context, field, chosen, kept string) map[string]string {
	if chosen == "" || chosen == kept || currentUser(c).Admin {
		return nil
	}
	return map[string]string{field: "Only an administrator may choose a pull secret: it holds their registry credentials. Ask one to set it."}
}

// mergeReasons joins reason maps; the first reason of a field wins.
func mergeReasons(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out
}
