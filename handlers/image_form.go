package handlers

import (
	"context"
	"strings"
	"unicode"

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
	}, nil
}

// toggleReasons checks what only the form has: a toggle that is on without
// its value.
func toggleReasons(v views.ImageValues) map[string]string {
	f := map[string]string{}
	if v.UsePullSecret && v.PullSecret == "" {
		f["pullSecret"] = "Choose a secret, or turn \"Use a pull secret\" off."
	}
	return f
}

// withReasons adds field reasons to err (which may be nil), so that all of
// them are shown at once; a field keeps its first reason.
func withReasons(err error, fields map[string]string) error {
	if len(fields) == 0 || (err != nil && store.ErrorCode(err) != store.EINVALID) {
		return err
	}
	all := map[string]string{}
	for k, v := range store.ErrorFields(err) {
		all[k] = v
	}
	for k, v := range fields {
		if _, ok := all[k]; !ok {
			all[k] = v
		}
	}
	return store.Invalid(all)
}

// imageOf turns the form's values into the image to save: the pull secret
// counts only when its toggle is on, the groups only when not global.
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

// prepareImage normalises img's URLs with the containers/image parser and
// checks its fields, so that every bad field is reported at once: the URL
// errors (which the store cannot know) together with the store's own rules.
// Names of groups and secrets are resolved by the store when saving.
func (s *Server) prepareImage(img *store.Image) error {
	fields := map[string]string{}
	if img.Type != store.TypeUniversal {
		// The GPU URL toggle is offered for universal images only; the
		// store drops it for the others, and so does the form.
		img.UseGPUURL = false
	}
	if img.URL != "" {
		if ref, err := s.normalize(img.URL); err != nil {
			fields["url"] = sentence(err.Error())
		} else {
			img.URL = ref
		}
	}
	if img.UseGPUURL && img.URLForGPU != "" {
		if ref, err := s.normalize(img.URLForGPU); err != nil {
			fields["urlForGpu"] = sentence(err.Error())
		} else {
			img.URLForGPU = ref
		}
	}
	if err := img.Validate(); err != nil {
		for k, v := range store.ErrorFields(err) {
			if _, ok := fields[k]; !ok {
				fields[k] = v
			}
		}
	}
	if len(fields) > 0 {
		return store.Invalid(fields)
	}
	return nil
}

// sentence makes an error text start with a capital and end with a full
// stop, to sit under a form field.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	if !strings.HasSuffix(s, ".") {
		r = append(r, '.')
	}
	return string(r)
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
