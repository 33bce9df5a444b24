package handlers

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// This file answers what the images of builds hold: a build's package list
// (its page's Packages section and the API), and what changed between two
// builds of an image (the API's diff, the image page's Compare, a rebuild's
// page).

// packagesPerPage is the length of a page of a build page's package table.
const packagesPerPage = 50

// apiBuildPackages answers one page of the packages a build's image holds:
// ?q= keeps the names that hold it, ?manager= one manager's packages.
func (s *Server) apiBuildPackages(c echo.Context) error {
	id, err := buildParam(c)
	if err != nil {
		return err
	}
	offset, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := s.store.ListPackages(c.Request().Context(), id, packageFilter(c, limit, offset))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newList(page.Items, page.Total))
}

// packageFilter reads ?q= and ?manager= into a filter of a page.
func packageFilter(c echo.Context, limit, offset int) store.PackageFilter {
	return store.PackageFilter{Query: c.QueryParam("q"), Manager: store.PackageManager(c.QueryParam("manager")), Limit: limit, Offset: offset}
}

// apiImageDiff answers what changed in an image's packages from build
// ?from= to build ?to= (by default its last two successful builds).
func (s *Server) apiImageDiff(c echo.Context) error {
	from, to, err := diffParams(c)
	if err != nil {
		return err
	}
	d, err := s.store.DiffBuilds(c.Request().Context(), c.Param("name"), from, to)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// diffParams reads ?from= and ?to=, build ids; an absent one is 0, the
// default of store.DiffBuilds.
func diffParams(c echo.Context) (from, to int64, err error) {
	fields := map[string]string{}
	for name, id := range map[string]*int64{"from": &from, "to": &to} {
		v := c.QueryParam(name)
		if v == "" {
			continue
		}
		if *id, err = strconv.ParseInt(v, 10, 64); err != nil || *id < 1 {
			fields[name] = "A build's id: a whole number from 1."
		}
	}
	if len(fields) > 0 {
		return 0, 0, store.Invalid(fields)
	}
	return from, to, nil
}

// buildPackagesProps loads a build page's Packages section: the page of the
// table that ?q=, ?manager= and ?page= ask for (a page past the end shows
// the last one).
func (s *Server) buildPackagesProps(c echo.Context, sc views.Scope, id int64) (*views.PackagesProps, error) {
	pageNum, _ := strconv.Atoi(c.QueryParam("page"))
	pageNum = max(pageNum, 1)
	f := packageFilter(c, packagesPerPage, (pageNum-1)*packagesPerPage)
	page, err := s.store.ListPackages(c.Request().Context(), id, f)
	if err == nil && len(page.Items) == 0 && page.Total > 0 {
		pageNum = (page.Total + packagesPerPage - 1) / packagesPerPage
		f.Offset = (pageNum - 1) * packagesPerPage
		page, err = s.store.ListPackages(c.Request().Context(), id, f)
	}
	if err != nil {
		return nil, err
	}
	return &views.PackagesProps{
		Scope: sc, BuildID: id, Query: f.Query, Manager: string(f.Manager), Counts: page.Counts,
		Items: page.Items, Total: page.Total, PageNum: pageNum, PerPage: packagesPerPage,
	}, nil
}

// changesSince is what changed in a succeeded build's packages since the
// image's previous successful build; nil when there is nothing to compare
// (no such build, or one of the two has no list).
func (s *Server) changesSince(c echo.Context, b *store.Build) (*store.PackageDiff, error) {
	if b.Status != store.BuildSucceeded || b.PackageCount == nil {
		return nil, nil
	}
	d, err := s.store.DiffBuilds(c.Request().Context(), b.Image, 0, b.ID)
	if store.ErrorCode(err) == store.EINVALID {
		return nil, nil
	}
	return d, err
}

// compareProps loads the Compare section of a custom image's page from its
// builds: the builds with a list, the two chosen (?from= and ?to=, else the
// newest two) and, when asked, their comparison. A comparison that cannot
// be made is said in the section, and the page's status is 422.
func (s *Server) compareProps(c echo.Context, image string, builds []*store.Build) (views.CompareProps, int, error) {
	var p views.CompareProps
	for _, b := range builds {
		if b.PackageCount != nil {
			p.Builds = append(p.Builds, b)
		}
	}
	if len(p.Builds) >= 2 {
		p.From, p.To = p.Builds[1].ID, p.Builds[0].ID
	}
	if c.QueryParam("from") == "" && c.QueryParam("to") == "" {
		return p, http.StatusOK, nil
	}
	from, to, err := diffParams(c)
	if err == nil {
		p.From, p.To = from, to
		p.Diff, err = s.store.DiffBuilds(c.Request().Context(), image, from, to)
	}
	switch code := store.ErrorCode(err); code {
	case "":
		return p, http.StatusOK, nil
	case store.EINVALID, store.ENOTFOUND:
		p.Error = reasonText(err)
		return p, http.StatusUnprocessableEntity, nil
	}
	return p, 0, err
}

// reasonText is an error's field reasons in one line, or its message when
// it has none.
func reasonText(err error) string {
	fields := store.ErrorFields(err)
	if len(fields) == 0 {
		return store.ErrorMessage(err)
	}
	var parts []string
	for _, k := range sortedKeys(fields) {
		parts = append(parts, fields[k])
	}
	return strings.Join(parts, " ")
}
