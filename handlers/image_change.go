package handlers

import (
	"context"
	"fmt"

	"github.com/labstack/echo/v4"

	"imagehub/buildah/recipe"
	"imagehub/buildah/remote"
	"imagehub/store"
	"imagehub/views"
)

// imageChange is one request to create an image, to change one or to build
// one, as checkImageChange sees it. Every path that saves an image or queues
// a build (the add and edit forms of both scopes, Edit Groups, the build and
// rebuild forms, and the API's create, patch and rebuild) describes its
// request as an imageChange and passes it to checkImageChange before it
// saves anything: a rule added there holds on every path.
type imageChange struct {
	// before is the image as stored, nil when it is being created.
	before *store.Image
	// after is the image as it is to be saved. Its Recipe is the recipe to
	// keep (and build) for a custom image, nil for an existing one.
	after *store.Image
	// build is set when the change queues a build of after.Recipe.
	build bool
	// form holds what a page's form sent, nil for the API: the form's
	// toggles are checked too.
	form *views.ImageValues
	// packages are after.Recipe's package lists, parsed by
	// checkImageChange when the recipe is new, changed or to be built.
	packages recipe.Packages
	// notices tell what checkImageChange changed of its own accord (a pull
	// secret dropped), for a page to show once the change is saved.
	notices []string
}

// checkImageChange checks a change against every rule an image change must
// follow, normalising ch.after's URLs and its recipe's base image on the
// way. It returns nil, one EINVALID error with the reason of every bad field,
// or an internal error. The rules, in the order in which a field gets its
// first reason:
//
//   - a custom image's URLs come from its builds: none is given when it is
//     created, and none changes afterwards (customURLReasons);
//   - only a custom image has a recipe, and it keeps it (recipeKeptReasons);
//   - URLs are image references, normalised with the containers/image
//     parser, and the fields follow store.Image.Validate (imageFieldReasons);
//   - every group name sent is the name of a group, none blank
//     (store.CheckGroupNames), even where the groups do not count (a
//     global image's): a name is never dropped unread;
//   - a recipe that is new, changed or to be built passes checkRecipe;
//   - a form's "Use a pull secret" toggle is not on without a secret
//     (toggleReasons);
//   - a pull secret kept by an image or its recipe is dropped, with a
//     notice, when the URL or base image it serves moves to another
//     registry host than the secret's (dropMovedSecrets);
//   - only an administrator chooses a pull secret, of the image or of its
//     recipe; others may keep the one they have (pullSecretReasons);
//   - a group's own image is neither global nor granted to other groups
//     (groupImageReasons).
//
// Names of groups and secrets are resolved again by the store when it
// saves, in the same transaction.
func (s *Server) checkImageChange(c echo.Context, ch *imageChange) error {
	f := fieldErrors{}
	f.merge(customURLReasons(ch))
	f.merge(recipeKeptReasons(ch))
	f.merge(s.imageFieldReasons(ch))
	if err := f.collect(s.store.CheckGroupNames(c.Request().Context(), ch.after.Groups)); err != nil {
		return err
	}
	if err := f.collect(s.checkChangedRecipe(c, ch)); err != nil {
		return err
	}
	f.merge(toggleReasons(ch))
	if err := s.dropMovedSecrets(c.Request().Context(), ch); err != nil {
		return err
	}
	f.merge(pullSecretReasons(currentUser(c), ch))
	f.merge(groupImageReasons(ch.after))
	return f.err()
}

// customURLReasons: a custom image gets its URL from its builds.
func customURLReasons(ch *imageChange) map[string]string {
	after, before := ch.after, ch.before
	switch {
	case after.Recipe == nil:
		return nil
	case before == nil && (after.URL != "" || after.UseGPUURL):
		return map[string]string{"url": "A custom image gets its URL from its build; leave the URL empty."}
	case before != nil && (after.URL != before.URL || after.URLForGPU != before.URLForGPU || after.UseGPUURL != before.UseGPUURL):
		return map[string]string{"url": "A custom image gets its URL from its builds; it cannot be set."}
	}
	return nil
}

// recipeKeptReasons: an existing image neither gains nor loses a recipe.
func recipeKeptReasons(ch *imageChange) map[string]string {
	if ch.before != nil && (ch.before.Recipe == nil) != (ch.after.Recipe == nil) {
		return map[string]string{"build": "Only a custom image has a recipe, and it cannot be removed."}
	}
	return nil
}

// imageFieldReasons normalises the URLs of ch.after that are new or changed
// and returns the reasons of its bad fields: the URL errors, which the store
// cannot know, together with the store's own rules.
func (s *Server) imageFieldReasons(ch *imageChange) map[string]string {
	img, f := ch.after, fieldErrors{}
	if img.Type != store.TypeUniversal {
		// The GPU URL toggle is offered for universal images only; the
		// store drops it for the others, and so does the form.
		img.UseGPUURL = false
	}
	var was store.Image
	if ch.before != nil {
		was = *ch.before
	}
	if img.URL != "" && img.URL != was.URL {
		if ref, err := s.normalize(img.URL); err != nil {
			f.add("url", sentence(err.Error()))
		} else {
			img.URL = ref
		}
	}
	if img.UseGPUURL && img.URLForGPU != "" && img.URLForGPU != was.URLForGPU {
		if ref, err := s.normalize(img.URLForGPU); err != nil {
			f.add("urlForGpu", sentence(err.Error()))
		} else {
			img.URLForGPU = ref
		}
	}
	f.merge(store.ErrorFields(img.Validate()))
	return f
}

// checkChangedRecipe checks ch.after's recipe with checkRecipe when it is
// new, changed or to be built, and keeps it normalised and its packages.
func (s *Server) checkChangedRecipe(c echo.Context, ch *imageChange) error {
	r := ch.after.Recipe
	if r == nil || (!ch.build && ch.before != nil && ch.before.Recipe != nil && *ch.before.Recipe == *r) {
		return nil
	}
	checked, pkgs, err := s.checkRecipe(c.Request().Context(), *r)
	ch.after.Recipe, ch.packages = &checked, pkgs
	return err
}

// toggleReasons checks what only a form has: its "Use a pull secret" toggle
// on without a secret. In the build and rebuild forms the toggle is the
// recipe's (the base image's pull secret).
func toggleReasons(ch *imageChange) map[string]string {
	if ch.form == nil || !ch.form.UsePullSecret || ch.form.PullSecret != "" {
		return nil
	}
	field := "pullSecret"
	if ch.build {
		field = "buildPullSecret"
	}
	return map[string]string{field: "Choose a secret, or turn \"Use a pull secret\" off."}
}

// dropMovedSecrets drops the pull secret that an image, or its recipe,
// keeps (the same secret before and after) when a URL it serves moves to
// another registry host, one the secret is not for: its credentials are
// meant for its own host only, and whoever changes the URL (a group admin
// may) must not send them elsewhere. Each drop adds a notice. A secret that
// is newly chosen is left to pullSecretReasons and the store.
func (s *Server) dropMovedSecrets(ctx context.Context, ch *imageChange) error {
	b, a := ch.before, ch.after
	if b == nil {
		return nil
	}
	if a.PullSecret != "" && a.PullSecret == b.PullSecret {
		moved := movedTo(b.URL, a.URL)
		if moved == "" && a.UseGPUURL {
			moved = movedTo(b.URLForGPU, a.URLForGPU)
		}
		drop, host, err := s.secretNotFor(ctx, a.PullSecret, moved)
		if err != nil {
			return err
		}
		if drop {
			ch.notices = append(ch.notices, fmt.Sprintf("Pull secret %q was removed: it is for %s, and the image is now on %s.", a.PullSecret, host, moved))
			a.PullSecret = ""
		}
	}
	if b.Recipe != nil && a.Recipe != nil && a.Recipe.PullSecret != "" && a.Recipe.PullSecret == b.Recipe.PullSecret {
		moved := movedTo(b.Recipe.BaseImage, a.Recipe.BaseImage)
		drop, host, err := s.secretNotFor(ctx, a.Recipe.PullSecret, moved)
		if err != nil {
			return err
		}
		if drop {
			ch.notices = append(ch.notices, fmt.Sprintf("Pull secret %q was removed from the recipe: it is for %s, and the base image is now on %s.", a.Recipe.PullSecret, host, moved))
			r := *a.Recipe
			r.PullSecret = ""
			a.Recipe = &r
		}
	}
	return nil
}

// movedTo is the registry host of the normalised reference after when it
// differs from that of before, else "".
func movedTo(before, after string) string {
	if after == "" || after == before {
		return ""
	}
	if h := remote.Host(after); before == "" || !remote.SameHost(remote.Host(before), h) {
		return h
	}
	return ""
}

// secretNotFor reports whether the secret named is for another registry
// host than host (false when host is ""), and the secret's host.
func (s *Server) secretNotFor(ctx context.Context, secret, host string) (bool, string, error) {
	if host == "" {
		return false, "", nil
	}
	secretHost, _, _, err := s.store.SecretAuth(ctx, secret)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return false, "", nil // the store refuses the unknown name when it saves
	} else if err != nil {
		return false, "", err
	}
	return !remote.SameHost(secretHost, host), secretHost, nil
}

// reasonSecretAdminOnly is why someone else than an administrator may not
// choose a pull secret.
const reasonSecretAdminOnly = "Only an administrator may choose a pull secret: it holds their registry credentials. Ask one to set it."

// pullSecretReasons refuses a pull secret, of the image or of its recipe,
// that u may not use (see mayUsePullSecret).
func pullSecretReasons(u *store.User, ch *imageChange) map[string]string {
	var keptImage, keptRecipe string
	if ch.before != nil {
		keptImage = ch.before.PullSecret
		if ch.before.Recipe != nil {
			keptRecipe = ch.before.Recipe.PullSecret
		}
	}
	f := map[string]string{}
	if !mayUsePullSecret(u, ch.after.PullSecret, keptImage) {
		f["pullSecret"] = reasonSecretAdminOnly
	}
	if r := ch.after.Recipe; r != nil && !mayUsePullSecret(u, r.PullSecret, keptRecipe) {
		f["buildPullSecret"] = reasonSecretAdminOnly
	}
	return f
}

// mayUsePullSecret is who may choose or keep a pull secret. A secret holds
// an administrator's registry credentials: an administrator may choose any,
// anyone else none, but keep the one an administrator put on their image or
// recipe (kept).
func mayUsePullSecret(u *store.User, chosen, kept string) bool {
	return chosen == "" || chosen == kept || (u != nil && u.Admin)
}

// groupImageReasons refuses, for a group's own image, global access or a
// grant to other groups: it is its group's alone, and a grant that was
// silently dropped would mislead whoever asked for it.
func groupImageReasons(img *store.Image) map[string]string {
	if img.Owner == store.OwnerSystem {
		return nil
	}
	f := map[string]string{}
	if img.Global {
		f["global"] = "A group's own image cannot be global."
	}
	if len(img.Groups) > 1 || (len(img.Groups) == 1 && img.Groups[0] != img.Owner) {
		f["groups"] = fmt.Sprintf("A group's own image is used by its group %q only.", img.Owner)
	}
	return f
}
