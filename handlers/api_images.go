package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// imageInput is the writable part of an image in the JSON API.
type imageInput struct {
	DisplayName string
	Description string
	Type        store.ImageType
	URL         string
	UseGPUURL   bool
	URLForGPU   string
	PullSecret  string
	Global      bool
	Groups      []string
	Build       *strictRecipe
}

// targets maps the JSON field names onto in's fields.
func (in *imageInput) targets() map[string]any {
	return map[string]any{
		"displayName": &in.DisplayName,
		"description": &in.Description,
		"type":        &in.Type,
		"url":         &in.URL,
		"useGpuUrl":   &in.UseGPUURL,
		"urlForGpu":   &in.URLForGPU,
		"pullSecret":  &in.PullSecret,
		"global":      &in.Global,
		"groups":      &in.Groups,
		"build":       &in.Build,
	}
}

// imageReadOnly lists the fields of an image that a client may send back but
// not change.
func imageReadOnly() []string {
	return []string{"name", "owner", "ready", "createdAt", "updatedAt"}
}

// apply copies the fields present in the request onto img.
func (in *imageInput) apply(img *store.Image, present map[string]bool) {
	set := func(name string, f func()) {
		if present[name] {
			f()
		}
	}
	set("displayName", func() { img.DisplayName = in.DisplayName })
	set("description", func() { img.Description = in.Description })
	set("type", func() { img.Type = in.Type })
	set("url", func() { img.URL = in.URL })
	set("useGpuUrl", func() { img.UseGPUURL = in.UseGPUURL })
	set("urlForGpu", func() { img.URLForGPU = in.URLForGPU })
	set("pullSecret", func() { img.PullSecret = in.PullSecret })
	set("global", func() { img.Global = in.Global })
	set("groups", func() { img.Groups = in.Groups })
}

// apiListImages lists images: ?q= searches names and descriptions, ?type=
// filters, ?page= and ?perPage= page. Under /groups/{group}/images it lists
// that group's own images; an administrator's /images takes ?owner=system
// or ?owner=GROUP.
func (s *Server) apiListImages(c echo.Context) error {
	offset, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	t := store.ImageType(c.QueryParam("type"))
	switch t {
	case "", store.TypeCPU, store.TypeGPU, store.TypeUniversal:
	default:
		return store.Invalid(map[string]string{"type": "Unknown type: choose cpu, gpu or universal."})
	}
	owner := c.QueryParam("owner")
	if sc := scopeOf(c); sc.IsGroup() {
		owner = sc.Group
	}
	imgs, total, err := s.store.ListImages(c.Request().Context(), store.ImageFilter{
		Query: c.QueryParam("q"), Type: t, Owner: owner, Offset: offset, Limit: limit,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(imgs, total))
}

// apiCreateImage adds an image and answers 201 with it: a System image, or
// under /groups/{group}/images that group's own image.
func (s *Server) apiCreateImage(c echo.Context) error {
	var in imageInput
	present, err := decodeObject(c, in.targets(), imageReadOnly()...)
	if err != nil {
		return err
	}
	img := &store.Image{Owner: imageOwner(scopeOf(c))}
	if err := groupAccessReasons(img.Owner, &in, present); err != nil {
		return err
	}
	in.apply(img, present)
	ctx := c.Request().Context()
	extra := secretReasons(c, "pullSecret", in.PullSecret, "")
	if in.Build != nil {
		extra = mergeReasons(extra, secretReasons(c, "buildPullSecret", in.Build.PullSecret, ""))
		b, err := s.createCustomImage(ctx, img, store.Recipe(*in.Build), extra)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, imageBody{Image: img, LatestBuild: b})
	}
	if err := withReasons(s.prepareImage(img), extra); err != nil {
		return err
	}
	if err := s.store.CreateImage(ctx, img); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, imageBody{Image: img})
}

// apiGetImage answers one image.
func (s *Server) apiGetImage(c echo.Context) error {
	img, err := s.store.FindImage(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	body, err := s.withLatestBuild(c, img)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, body)
}

// apiPatchImage changes only the fields present in the body.
func (s *Server) apiPatchImage(c echo.Context) error {
	ctx := c.Request().Context()
	img, err := s.store.FindImage(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	var in imageInput
	present, err := decodeObject(c, in.targets(), imageReadOnly()...)
	if err != nil {
		return err
	}
	if err := groupAccessReasons(img.Owner, &in, present); err != nil {
		return err
	}
	if reasons := mergeReasons(secretReasons(c, "pullSecret", in.PullSecret, img.PullSecret), patchedRecipeSecret(c, img, in.Build)); len(reasons) > 0 {
		return store.Invalid(reasons)
	}
	if img.Recipe != nil && (present["url"] || present["urlForGpu"] || present["useGpuUrl"]) {
		return store.Invalid(map[string]string{"url": "A custom image gets its URL from its builds; it cannot be set."})
	}
	in.apply(img, present)
	if err := s.patchRecipe(ctx, img, (*store.Recipe)(in.Build), present["build"]); err != nil {
		return err
	}
	if err := s.prepareImage(img); err != nil {
		return err
	}
	if err := s.store.UpdateImage(ctx, img); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, img)
}

// apiDeleteImage deletes an image: 204.
func (s *Server) apiDeleteImage(c echo.Context) error {
	if err := s.store.DeleteImage(c.Request().Context(), c.Param("name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// groupAccessReasons refuses, for a group's own image, a request to make it
// global or to grant it to groups: it is its group's alone, and a silently
// ignored grant would mislead whoever sent it.
func groupAccessReasons(owner string, in *imageInput, present map[string]bool) error {
	if owner == store.OwnerSystem {
		return nil
	}
	f := map[string]string{}
	if present["global"] && in.Global {
		f["global"] = "A group's own image cannot be global."
	}
	if present["groups"] && !(len(in.Groups) == 0 || (len(in.Groups) == 1 && in.Groups[0] == owner)) {
		f["groups"] = fmt.Sprintf("A group's own image is used by its group %q only.", owner)
	}
	if len(f) > 0 {
		return store.Invalid(f)
	}
	return nil
}

// patchRecipe replaces a custom image's recipe (without building it: a
// rebuild does that). Only custom images have one, and a custom image's URL
// comes from its builds, never from the request.
func (s *Server) patchRecipe(ctx context.Context, img *store.Image, r *store.Recipe, present bool) error {
	if !present {
		return nil
	}
	if img.Recipe == nil || r == nil {
		return store.Invalid(map[string]string{"build": "Only a custom image has a recipe, and it cannot be removed."})
	}
	recipe, _, err := s.checkRecipe(ctx, *r)
	if err != nil {
		return err
	}
	img.Recipe = &recipe
	return nil
}

// strictRecipe is a recipe in a JSON body. Unlike the object around it, it
// refuses unknown fields itself: a misspelt "aptPackages" would otherwise
// build an image without the packages its author asked for.
type strictRecipe store.Recipe

// UnmarshalJSON decodes the recipe, refusing fields it does not know.
func (r *strictRecipe) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*store.Recipe)(r))
}

// patchedRecipeSecret applies secretReasons to the pull secret of a recipe
// sent with PATCH.
func patchedRecipeSecret(c echo.Context, img *store.Image, r *strictRecipe) map[string]string {
	if r == nil {
		return nil
	}
	kept := ""
	if img.Recipe != nil {
		kept = img.Recipe.PullSecret
	}
	return secretReasons(c, "buildPullSecret", r.PullSecret, kept)
}
