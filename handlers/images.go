package handlers

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// imagesPerPage is the length of a page of the images table.
const imagesPerPage = 20

// scopeOf is whose images a request manages: the group of the route's
// :group parameter (/groups/{group}/…, which only its group admins and
// administrators reach), or the administrators' catalogue.
func scopeOf(c echo.Context) views.Scope { return views.Scope{Group: c.Param("group")} }

// imageOwner is the owner a new image of the scope gets.
func imageOwner(sc views.Scope) string {
	if sc.IsGroup() {
		return sc.Group
	}
	return store.OwnerSystem
}

// scopedImage returns the image named name when the scope holds it: any
// image for administrators, only the group's own images in a group's scope
// (any other image is "not found" there).
func (s *Server) scopedImage(ctx context.Context, sc views.Scope, name string) (*store.Image, error) {
	img, err := s.store.FindImage(ctx, name)
	if err != nil {
		return nil, err
	}
	if sc.IsGroup() && img.Owner != sc.Group {
		return nil, store.Errorf(store.ENOTFOUND, "Image %q is not an image of the group %q.", name, sc.Group)
	}
	return img, nil
}

// imagesPage shows the images table of the scope: every image, with a
// filter by owner (?owner=system or a group), for administrators; the
// group's own images in a group's scope. htmx requests (live search, page
// links) get the table fragment only.
func (s *Server) imagesPage(c echo.Context) error {
	sc := scopeOf(c)
	q, owner := c.QueryParam("q"), c.QueryParam("owner")
	page, _ := strconv.Atoi(c.QueryParam("page"))
	table, err := s.imagesTable(c, sc, q, owner, max(page, 1))
	if err != nil {
		return err
	}
	if isHTMX(c) {
		return render(c, http.StatusOK, views.ImagesTable(table))
	}
	var groups []*store.Group
	if !sc.IsGroup() {
		if groups, err = s.store.ListGroups(c.Request().Context()); err != nil {
			return err
		}
	}
	return render(c, http.StatusOK, views.ImagesPage(views.ImagesProps{
		Page:   s.page(c, sc.ImagesTitle(), sc.Nav()),
		Table:  table,
		Groups: groups,
	}))
}

// imagesTable loads one page of the table; a page past the end shows the
// last one (as after deleting the last image of the last page).
func (s *Server) imagesTable(c echo.Context, sc views.Scope, q, owner string, page int) (views.ImagesTableProps, error) {
	ctx := c.Request().Context()
	if sc.IsGroup() {
		owner = sc.Group
	}
	f := store.ImageFilter{Query: q, Owner: owner, Limit: imagesPerPage, Offset: (page - 1) * imagesPerPage}
	imgs, total, err := s.store.ListImages(ctx, f)
	if err != nil {
		return views.ImagesTableProps{}, err
	}
	if len(imgs) == 0 && total > 0 {
		page = (total + imagesPerPage - 1) / imagesPerPage
		f.Offset = (page - 1) * imagesPerPage
		if imgs, total, err = s.store.ListImages(ctx, f); err != nil {
			return views.ImagesTableProps{}, err
		}
	}
	building, err := s.store.ActiveBuilds(ctx)
	if err != nil {
		return views.ImagesTableProps{}, err
	}
	if sc.IsGroup() {
		owner = ""
	}
	return views.ImagesTableProps{
		Scope: sc, Owner: owner, Query: q, Images: imgs, Total: total, PageNum: page, PerPage: imagesPerPage, CSRF: s.csrfToken(c),
		Building: building,
	}, nil
}

// newImageForm shows the add form: an existing image, or (?kind=build) a
// custom build.
func (s *Server) newImageForm(c echo.Context) error {
	return s.renderImageForm(c, http.StatusOK, views.ImageFormProps{
		Kind:   c.QueryParam("kind"),
		Values: views.ImageValues{Type: string(store.TypeCPU)},
	})
}

// createImage adds an image from the add form. Bad fields bring the form
// back (422) with each reason at its field and the typed values kept.
func (s *Server) createImage(c echo.Context) error {
	v, err := imageFormValues(c)
	if err != nil {
		return err
	}
	kind := c.FormValue("kind")
	if kind == views.KindBuild {
		return s.createCustomImageForm(c, v)
	}
	sc := scopeOf(c)
	img := scopedImageOf(sc, v)
	err = s.checkImageChange(c, &imageChange{after: img, form: &v})
	if err == nil {
		err = s.store.CreateImage(c.Request().Context(), img)
	}
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderImageForm(c, http.StatusUnprocessableEntity, views.ImageFormProps{
			Kind: kind, Values: v, Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	if err := s.addFlash(c, "Image "+img.DisplayName+" added as "+img.Name+"."); err != nil {
		return err
	}
	return seeOther(c, sc.ImagePath(img.Name))
}

// imagePage shows one image and, for a custom image, its builds.
func (s *Server) imagePage(c echo.Context) error {
	ctx, sc := c.Request().Context(), scopeOf(c)
	img, err := s.scopedImage(ctx, sc, c.Param("name"))
	if err != nil {
		return err
	}
	p := views.ImagePageProps{Page: s.page(c, img.DisplayName, sc.Nav()), Scope: sc, Image: img}
	if img.Recipe != nil {
		if p.Builds, err = s.store.ListBuilds(ctx, img.Name); err != nil {
			return err
		}
		active, err := s.store.ActiveBuilds(ctx, img.Name)
		if err != nil {
			return err
		}
		p.Active = active[img.Name]
	}
	return render(c, http.StatusOK, views.ImagePage(p))
}

// editImageForm shows the edit form filled from the stored image.
func (s *Server) editImageForm(c echo.Context) error {
	img, err := s.scopedImage(c.Request().Context(), scopeOf(c), c.Param("name"))
	if err != nil {
		return err
	}
	return s.renderImageForm(c, http.StatusOK, views.ImageFormProps{
		Kind: kindOf(img), Name: img.Name, Owner: img.Owner, Values: views.ImageValuesOf(img),
	})
}

// updateImage saves the edit form. The name never changes; a custom image
// keeps its recipe.
func (s *Server) updateImage(c echo.Context) error {
	ctx, sc := c.Request().Context(), scopeOf(c)
	old, err := s.scopedImage(ctx, sc, c.Param("name"))
	if err != nil {
		return err
	}
	v, err := imageFormValues(c)
	if err != nil {
		return err
	}
	img := scopedImageOf(sc, v)
	img.Name, img.Owner, img.Recipe = old.Name, old.Owner, old.Recipe
	if old.Owner != store.OwnerSystem {
		// A group's own image is its group's alone, whoever edits it.
		img.Global, img.Groups = false, nil
	}
	if old.Recipe != nil {
		// A custom image's URL is what its last good build pushed, and the
		// form has no URL fields for it.
		img.URL, img.URLForGPU, img.UseGPUURL, img.PullSecret = old.URL, old.URLForGPU, old.UseGPUURL, old.PullSecret
	}
	err = s.checkImageChange(c, &imageChange{before: old, after: img, form: &v})
	if err == nil {
		err = s.store.UpdateImage(ctx, img)
	}
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderImageForm(c, http.StatusUnprocessableEntity, views.ImageFormProps{
			Kind: kindOf(old), Name: old.Name, Owner: old.Owner, Values: v, Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	if err := s.addFlash(c, "Image "+img.DisplayName+" saved."); err != nil {
		return err
	}
	return seeOther(c, sc.ImagePath(img.Name))
}

// deleteImage deletes an image of the request's scope (see deleted): from
// the table, the image page and the API.
func (s *Server) deleteImage(c echo.Context) error {
	name := c.Param("name")
	if err := s.deleteScopedImage(c, name); err != nil {
		return err
	}
	return s.deleted(c, "Image "+name+" deleted.", scopeOf(c).ImagesPath())
}

// deleteScopedImage deletes an image of the request's scope.
func (s *Server) deleteScopedImage(c echo.Context, name string) error {
	ctx := c.Request().Context()
	if _, err := s.scopedImage(ctx, scopeOf(c), name); err != nil {
		return err
	}
	return s.store.DeleteImage(ctx, name)
}

// imageGroupsForm is "Edit Groups": Global, or the groups that may use it.
func (s *Server) imageGroupsForm(c echo.Context) error {
	img, err := s.systemImage(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return s.renderImageGroups(c, http.StatusOK, views.ImageGroupsProps{Image: img, Global: img.Global, Selected: img.Groups})
}

// setImageGroups saves "Edit Groups".
func (s *Server) setImageGroups(c echo.Context) error {
	ctx := c.Request().Context()
	form, err := c.FormParams()
	if err != nil {
		return badRequest("The form could not be read.")
	}
	old, err := s.systemImage(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	img := *old
	img.Global, img.Groups = form.Get("global") != "", form["groups"]
	err = s.checkImageChange(c, &imageChange{before: old, after: &img})
	if err == nil {
		err = s.store.UpdateImage(ctx, &img)
	}
	if store.ErrorCode(err) == store.EINVALID {
		return s.renderImageGroups(c, http.StatusUnprocessableEntity, views.ImageGroupsProps{
			Image: old, Global: form.Get("global") != "", Selected: form["groups"], Errors: store.ErrorFields(err),
		})
	} else if err != nil {
		return err
	}
	saved, err := s.store.FindImage(ctx, img.Name)
	if err != nil {
		return err
	}
	if err := s.addFlash(c, "Access to "+saved.DisplayName+" saved: "+views.AccessText(saved)+"."); err != nil {
		return err
	}
	return seeOther(c, views.Scope{}.ImagePath(saved.Name))
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

func (s *Server) renderImageGroups(c echo.Context, status int, p views.ImageGroupsProps) error {
	groups, err := s.store.ListGroups(c.Request().Context())
	if err != nil {
		return err
	}
	p.Groups = groups
	p.Page = s.page(c, "Edit Groups of "+p.Image.DisplayName, views.NavImages)
	return render(c, status, views.ImageGroups(p))
}

// systemImage returns a System image for "Edit Groups": a group's own image
// has no groups to edit (it is its group's alone), which is said plainly
// rather than ignored.
func (s *Server) systemImage(ctx context.Context, name string) (*store.Image, error) {
	img, err := s.store.FindImage(ctx, name)
	if err != nil {
		return nil, err
	}
	if img.Owner != store.OwnerSystem {
		return nil, store.Errorf(store.ECONFLICT, "%s is the own image of the group %s: only that group may use it, so it has no groups to edit.", name, img.Owner)
	}
	return img, nil
}

// scopedImageOf is imageOf for the scope: a group's image belongs to the
// group and is never global nor granted to other groups.
func scopedImageOf(sc views.Scope, v views.ImageValues) *store.Image {
	img := imageOf(v)
	img.Owner = imageOwner(sc)
	if sc.IsGroup() {
		img.Global, img.Groups = false, nil
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
