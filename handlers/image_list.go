package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// imagesPerPage is the length of a page of the images table.
const imagesPerPage = 20

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
	var groups []string
	if !sc.IsGroup() {
		if groups, err = s.store.GroupNames(c.Request().Context()); err != nil {
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
