package handlers

import (
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
	return []string{"name", "owner", "ready", "createdAt", "updatedAt",
		"baseDigest", "baseLatestDigest", "baseCheckedAt", "baseUpdateAvailable"}
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
	set("build", func() { img.Recipe = (*store.Recipe)(in.Build) })
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
// under /groups/{group}/images that group's own image. With a "build"
// recipe it is a custom image, and its first build is queued.
func (s *Server) apiCreateImage(c echo.Context) error {
	var in imageInput
	present, err := decodeObject(c, in.targets(), imageReadOnly()...)
	if err != nil {
		return err
	}
	img := &store.Image{Owner: imageOwner(scopeOf(c))}
	in.apply(img, present)
	ch := &imageChange{after: img}
	if img.Recipe != nil {
		ch.build = true
		b, err := s.createCustomImage(c, ch)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, imageBody{Image: img, LatestBuild: s.withWaiting(b)[0]})
	}
	if err := s.checkImageChange(c, ch); err != nil {
		return err
	}
	if err := s.store.CreateImage(c.Request().Context(), img); err != nil {
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

// apiPatchImage changes only the fields present in the body. A "build"
// recipe replaces a custom image's recipe without building it (a rebuild
// does that).
func (s *Server) apiPatchImage(c echo.Context) error {
	ctx := c.Request().Context()
	before, err := s.store.FindImage(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	var in imageInput
	present, err := decodeObject(c, in.targets(), imageReadOnly()...)
	if err != nil {
		return err
	}
	img := *before
	in.apply(&img, present)
	if err := s.checkImageChange(c, &imageChange{before: before, after: &img}); err != nil {
		return err
	}
	if err := s.store.UpdateImage(ctx, &img); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, &img)
}

// strictRecipe is a recipe inside a JSON body ("build"). It is decoded as
// the rebuild's body is, by decodeFields with recipeTargets: a misspelt
// "aptPackages" is refused rather than building an image without the
// packages its author asked for, and a value of the wrong type says the
// type expected, each at "build.field".
type strictRecipe store.Recipe

// UnmarshalJSON decodes the recipe with decodeFields.
func (r *strictRecipe) UnmarshalJSON(b []byte) error {
	_, err := decodeFields(b, recipeTargets((*store.Recipe)(r)))
	return err
}

// imageBody is an image in the JSON API, with its newest build when it is a
// custom image, so that a client that created one can follow its build.
type imageBody struct {
	*store.Image
	LatestBuild *store.Build `json:"latestBuild,omitempty"`
}

// withLatestBuild adds the newest build to a custom image.
func (s *Server) withLatestBuild(c echo.Context, img *store.Image) (imageBody, error) {
	body := imageBody{Image: img}
	if img.Recipe == nil {
		return body, nil
	}
	bs, err := s.store.ListBuilds(c.Request().Context(), img.Name)
	if err == nil && len(bs) > 0 {
		body.LatestBuild = s.withWaiting(bs[0])[0]
	}
	return body, err
}
