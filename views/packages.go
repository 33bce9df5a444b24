package views

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"imagehub/store"
)

// maxDiffShown is how many packages of each list of a diff a page shows;
// the API's diff has them all.
const maxDiffShown = 200

// firstShown is the part of a diff's list that a page shows.
func firstShown[T any](xs []T) []T { return xs[:min(len(xs), maxDiffShown)] }

// diffSummary is a diff in one line: "+1 added, 0 removed, 0 changed".
func diffSummary(d *store.PackageDiff) string {
	return fmt.Sprintf("+%d added, %d removed, %d changed", len(d.Added), len(d.Removed), len(d.Changed))
}

// countsText says how many packages of each manager a list holds:
// "412 apt · 3 pip · 0 conda".
func countsText(counts map[store.PackageManager]int) string {
	parts := make([]string, 0, len(store.PackageManagers))
	for _, m := range store.PackageManagers {
		parts = append(parts, strconv.Itoa(counts[m])+" "+string(m))
	}
	return strings.Join(parts, " · ")
}

// rangeText says which of total things a page shows: "1–50 of 412
// packages", or "No packages".
func rangeText(page, perPage, shown, total int, things string) string {
	if total == 0 || shown == 0 {
		return "No " + things
	}
	first := (page-1)*perPage + 1
	return fmt.Sprintf("%d–%d of %d %s", first, first+shown-1, total, things)
}

// packagesURL is the build page's URL for a page of its package table with
// the table's filter.
func packagesURL(p PackagesProps, page int) string {
	v := url.Values{}
	if p.Query != "" {
		v.Set("q", p.Query)
	}
	if p.Manager != "" {
		v.Set("manager", p.Manager)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return p.Scope.BuildPath(p.BuildID)
	}
	return p.Scope.BuildPath(p.BuildID) + "?" + v.Encode()
}

// buildOption names a build in a choice of builds: "#12, 2025-01-31 10:00
// (412 packages)".
func buildOption(b *store.Build) string {
	s := "#" + strconv.FormatInt(b.ID, 10) + ", " + timePtrText(b.FinishedAt)
	if b.PackageCount != nil {
		s += " (" + plural(*b.PackageCount, "package") + ")"
	}
	return s
}
