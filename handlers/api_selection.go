package handlers

import (
	"context"

	"github.com/labstack/echo/v4"

	"imagehub/store"
)

// selectionItem is an image of a selection, as a user or a notebook launcher
// needs it: what to show, which reference to pull on CPU and on GPU, with
// which pull secret, and whether an administrator made it (a System image)
// rather than a group. It leaves out who else may use the image and how it
// was built.
type selectionItem struct {
	Name        string          `json:"name"`
	DisplayName string          `json:"displayName"`
	Description string          `json:"description"`
	Type        store.ImageType `json:"type"`
	// URL is the reference to run without a GPU (for a gpu image, its one
	// reference).
	URL string `json:"url"`
	// URLForGPU is the reference to run with a GPU: the separate GPU
	// reference of a universal image, else URL. A cpu image has none (the
	// field is left out): it is not meant for GPU profiles.
	URLForGPU string `json:"urlForGpu,omitempty"`
	// PullSecret names the image pull secret, "" when none is needed.
	PullSecret string `json:"pullSecret"`
	// System is true for an administrator's image, false for a group's own.
	System bool `json:"system"`
	// Owner is "system" or the owning group's name.
	Owner string `json:"owner"`
}

// selectionItems turns images into selection items.
func selectionItems(imgs []*store.Image) []selectionItem {
	items := make([]selectionItem, len(imgs))
	for i, img := range imgs {
		items[i] = selectionItem{
			Name:        img.Name,
			DisplayName: img.DisplayName,
			Description: img.Description,
			Type:        img.Type,
			URL:         img.URL,
			URLForGPU:   img.URLForGPU,
			PullSecret:  img.PullSecret,
			System:      img.Owner == store.OwnerSystem,
			Owner:       img.Owner,
		}
		if img.Type == store.TypeCPU {
			items[i].URLForGPU = ""
		} else if items[i].URLForGPU == "" {
			items[i].URLForGPU = img.URL
		}
	}
	return items
}

// apiMyImages lists the images the caller may start: the ready global
// System images, the ready System images granted to one of their groups and
// their groups' own ready images.
func (s *Server) apiMyImages(c echo.Context) error {
	var groups []string
	for _, m := range currentUser(c).Groups {
		groups = append(groups, m.Group)
	}
	return s.selectionAnswer(c, groups, func(ctx context.Context) ([]*store.Image, error) {
		return s.store.SelectionOfGroups(ctx, groups)
	})
}

// apiGroupSelection lists every ready image open to a group (global System
// images, System images granted to it, its own images), for a notebook
// launcher: see docs/launcher.md.
func (s *Server) apiGroupSelection(c echo.Context) error {
	group := c.Param("group")
	return s.selectionAnswer(c, []string{group}, func(ctx context.Context) ([]*store.Image, error) {
		return s.store.GroupSelection(ctx, group)
	})
}
