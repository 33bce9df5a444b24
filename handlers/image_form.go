package handlers

import (
	"context"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// imageFormValues reads the image form as it was typed. Checkboxes are on
// when present (browsers send nothing for an unchecked box).
func imageFormValues(c echo.Context) (views.ImageValues, error) {
	form, err := c.FormParams()
	if err != nil {
		return views.ImageValues{}, badRequest("The form could not be read.")
	}
	return views.ImageValues{
		DisplayName:   form.Get("displayName"),
		Description:   form.Get("description"),
		Type:          form.Get("type"),
		URL:           form.Get("url"),
		UseGPUURL:     form.Get("useGpuUrl") != "",
		URLForGPU:     form.Get("urlForGpu"),
		UsePullSecret: form.Get("usePullSecret") != "",
		PullSecret:    form.Get("pullSecret"),
		Global:        form.Get("global") != "",
		Groups:        form["groups"],
		BaseImage:     form.Get("baseImage"),
		Apt:           form.Get("apt"),
		Conda:         form.Get("conda"),
		Pip:           form.Get("pip"),
		NoSmokeTest:   form.Get("smokeTest") == "",
	}, nil
}

// imageOf turns the form's values into the image to save: the pull secret
// counts only when its toggle is on, the groups only when not global (the
// form hides them then, and they keep whatever boxes were ticked before).
func imageOf(v views.ImageValues) *store.Image {
	img := &store.Image{
		DisplayName: v.DisplayName,
		Description: v.Description,
		Type:        store.ImageType(v.Type),
		URL:         v.URL,
		UseGPUURL:   v.UseGPUURL,
		URLForGPU:   v.URLForGPU,
		Global:      v.Global,
		Owner:       store.OwnerSystem,
	}
	if v.UsePullSecret {
		img.PullSecret = v.PullSecret
	}
	if !v.Global {
		img.Groups = v.Groups
	}
	return img
}

// scopedImageOf is imageOf for the scope: a group's image belongs to the
// group and is never global. Its form offers no groups; any group names
// sent are kept for checkImageChange to refuse, not dropped.
func scopedImageOf(sc views.Scope, v views.ImageValues) *store.Image {
	img := imageOf(v)
	img.Owner = imageOwner(sc)
	if sc.IsGroup() {
		img.Global = false
	}
	return img
}

// kindOf tells a custom (built) image from an existing one.
func kindOf(img *store.Image) string {
	if img.Recipe != nil {
		return views.KindBuild
	}
	return views.KindExisting
}

func (s *Server) renderImageForm(c echo.Context, status int, p views.ImageFormProps) error {
	p.Scope = scopeOf(c)
	p, err := s.imageFormProps(c.Request().Context(), p)
	if err != nil {
		return err
	}
	title := "Add an image"
	if p.Editing() {
		title = "Edit " + p.Values.DisplayName
	}
	p.Page = s.page(c, title, p.Scope.Nav())
	return render(c, status, views.ImageForm(p))
}

// imageFormProps fills the lists the image form offers (secrets, groups).
func (s *Server) imageFormProps(ctx context.Context, p views.ImageFormProps) (views.ImageFormProps, error) {
	var err error
	if p.Secrets, err = s.store.ListSecrets(ctx); err != nil {
		return p, err
	}
	if p.Groups, err = s.store.ListGroups(ctx); err != nil {
		return p, err
	}
	if p.Kind != views.KindBuild {
		p.Kind = views.KindExisting
	} else if p.BaseImages, err = s.baseImages(ctx); err != nil {
		return p, err
	}
	return p, nil
}

// baseImages lists the URLs of the catalogue's ready images, which the build
// form suggests as base images.
func (s *Server) baseImages(ctx context.Context) ([]string, error) {
	imgs, _, err := s.store.ListImages(ctx, store.ImageFilter{})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var urls []string
	for _, img := range imgs {
		if img.Ready && !seen[img.URL] {
			seen[img.URL] = true
			urls = append(urls, img.URL)
		}
	}
	return urls, nil
}
