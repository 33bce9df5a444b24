package store

import (
	"context"
	"database/sql"
	"math/bits"
	"slices"
	"strings"
	"sync"
)

// catalogue is every image, in memory, in the order of the images table
// (display name, then name), with what a search needs, and the names of
// the groups: the listings (ListImages, GroupNames) and the selections
// (Selection, GroupSelection) are read from it, without reading and
// decoding thousands of rows for each request.
//
// The triggers of migration 006 count in catalogue_version every change to
// what it holds (images, the groups they are granted to, the groups, the
// names of secrets), whoever writes (another imagehub process too). Each
// listing reads that version first, and loads the catalogue again when the
// one in memory is older: about 0.1 s of work, and 1.4 KB of memory an
// image, at 10,000 images.
//
// A search looks for the query only in the images that have every trigram
// of it (trigramIndex). SQLite's LIKE reads every row for that, and FTS5's
// trigram index (which needs a build tag) the long lists of the common
// trigrams, for a query such as "number 99": milliseconds at 10,000
// images, against tens of microseconds here.
type catalogue struct {
	version int64
	entries []catalogueEntry
	// index holds the trigrams of each entry's fields, by entry number.
	index trigramIndex
	// open are the numbers of the entries open to everyone (global System
	// images) and, by group name, of those granted to a group: in order.
	open    []int
	granted map[string][]int
	// groups are the names of all groups, in order.
	groups []string
}

type catalogueEntry struct {
	img *Image
	// fields are the name, display name and description as SQLite's
	// lower() makes them (ASCII letters only): what a search looks in.
	fields [3]string
}

// catalogueCache holds the newest catalogue loaded.
type catalogueCache struct {
	mu  sync.Mutex
	cat *catalogue
}

// catalogue returns the catalogue as the database holds it now, loading
// it when the one in memory is of an older version. Its images are
// shared: hand out copies (cloneImage).
func (s *Store) catalogue(ctx context.Context) (*catalogue, error) {
	version, err := catalogueVersion(ctx, s.rdb)
	if err != nil {
		return nil, err
	}
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	if c := s.cat.cat; c != nil && c.version >= version {
		return c, nil
	}
	// The version and what it counts, from one snapshot.
	var c *catalogue
	err = s.readTx(ctx, func(tx *sql.Tx) error {
		v, err := catalogueVersion(ctx, tx)
		if err == nil {
			c, err = loadCatalogue(ctx, tx, v)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	s.cat.cat = c
	return c, nil
}

// CatalogueVersion returns a number that changes whenever the images,
// the groups they are granted to or the groups change: for as long as it
// does not, ListImages, GroupNames and the selections of given groups
// (SelectionOfGroups, GroupSelection) return the same.
func (s *Store) CatalogueVersion(ctx context.Context) (int64, error) {
	return catalogueVersion(ctx, s.rdb)
}

func catalogueVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, `SELECT v FROM catalogue_version`).Scan(&v)
	return v, err
}

func loadCatalogue(ctx context.Context, tx *sql.Tx, version int64) (*catalogue, error) {
	rows, err := tx.QueryContext(ctx, imageColumns+` ORDER BY i.display_name, i.name`)
	if err != nil {
		return nil, err
	}
	imgs, ids, err := scanImages(rows)
	if err != nil {
		return nil, err
	}
	if err := loadAllImageGroups(ctx, tx, imgs, ids); err != nil {
		return nil, err
	}
	groups, err := queryNames(ctx, tx, `SELECT name FROM groups ORDER BY name`)
	if err != nil {
		return nil, err
	}
	c := &catalogue{version: version, entries: make([]catalogueEntry, len(imgs)), granted: map[string][]int{}, groups: groups}
	for i, img := range imgs {
		e := &c.entries[i]
		e.img = img
		if img.Owner == OwnerSystem && img.Global {
			c.open = append(c.open, i)
		}
		for _, g := range img.Groups {
			c.granted[g] = append(c.granted[g], i)
		}
		for k, f := range []string{img.Name, img.DisplayName, img.Description} {
			e.fields[k] = asciiLower(f)
			c.index.add(i, e.fields[k])
		}
	}
	return c, nil
}

// loadAllImageGroups fills Groups of every image, by name.
func loadAllImageGroups(ctx context.Context, tx *sql.Tx, imgs []*Image, ids []int64) error {
	byID := make(map[int64]*Image, len(ids))
	for i, id := range ids {
		byID[id] = imgs[i]
	}
	rows, err := tx.QueryContext(ctx, `SELECT ig.image_id, g.name FROM image_groups ig JOIN groups g ON g.id = ig.group_id ORDER BY g.name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   int64
			name string
		)
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		if img := byID[id]; img != nil {
			img.Groups = append(img.Groups, name)
		}
	}
	return rows.Err()
}

// list returns copies of one page of the images that match f, in the
// table's order, and how many match in all. f.Limit <= 0 means no limit.
func (c *catalogue) list(f ImageFilter) ([]*Image, int) {
	var page []*Image
	if f == (ImageFilter{Offset: f.Offset, Limit: f.Limit}) {
		// No filter: the page is a slice of the catalogue.
		end := len(c.entries)
		if f.Limit > 0 {
			end = min(end, max(f.Offset, 0)+f.Limit)
		}
		for i := max(f.Offset, 0); i < end; i++ {
			page = append(page, cloneImage(c.entries[i].img))
		}
		return page, len(c.entries)
	}
	total := 0
	c.search(f.Query, func(img *Image) {
		if (f.Owner != "" && img.Owner != f.Owner) || (f.Type != "" && img.Type != f.Type) {
			return
		}
		if total >= f.Offset && (f.Limit <= 0 || len(page) < f.Limit) {
			page = append(page, cloneImage(img))
		}
		total++
	})
	return page, total
}

// selection returns copies of the ready images open to members of any of
// the groups: the global System images, and the images granted to one of
// the groups (a group's own images are granted to it).
func (c *catalogue) selection(groups []string) []*Image {
	nums := slices.Clone(c.open)
	for _, g := range groups {
		nums = append(nums, c.granted[g]...)
	}
	slices.Sort(nums)
	var out []*Image
	for _, i := range slices.Compact(nums) {
		if img := c.entries[i].img; img.Ready {
			out = append(out, cloneImage(img))
		}
	}
	return out
}

// cloneImage copies an image of the catalogue for a caller, who may change it.
func cloneImage(img *Image) *Image {
	c := *img
	c.Groups = slices.Clone(img.Groups)
	if img.Recipe != nil {
		r := *img.Recipe
		c.Recipe = &r
	}
	return &c
}

// search calls fn, in the table's order, with each image whose name,
// display name or description contains query, ignoring the case of ASCII
// letters and the spaces around the query (as the search did when it was a
// LIKE of lower(…) against the lowered query); with every image when the
// query is empty. Only the images that have every trigram of the query
// are looked at (trigramIndex).
func (c *catalogue) search(query string, fn func(*Image)) {
	q := strings.ToLower(strings.TrimSpace(query))
	if q == "" {
		for i := range c.entries {
			fn(c.entries[i].img)
		}
		return
	}
	c.index.candidates(q, len(c.entries), func(i int) {
		for _, f := range c.entries[i].fields {
			if strings.Contains(f, q) {
				fn(c.entries[i].img)
				return
			}
		}
	})
}

// asciiLower lowers the ASCII letters of s and leaves every other byte.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// trigramIndex tells which texts may contain a string: for each of
// trigramBits bits, the set of the texts (by their index) that have a
// trigram (three bytes in a row) that hashes to that bit. A text that
// contains a string has each of its trigrams, so it is in the set of each
// of their bits; a text in all these sets is only likely to contain it.
type trigramIndex struct {
	// texts[b] has bit i set when text i has a trigram hashing to b.
	texts [trigramBits][]uint64
}

const trigramBits = 4096

// add records the trigrams of text number i (texts are added in order).
func (x *trigramIndex) add(i int, text string) {
	eachTrigramBit(text, func(b int) {
		for len(x.texts[b]) <= i/64 {
			x.texts[b] = append(x.texts[b], 0)
		}
		x.texts[b][i/64] |= 1 << (i % 64)
	})
}

// candidates calls fn, in order, with the index of each of the n texts
// that may contain q: every text when q is shorter than a trigram.
func (x *trigramIndex) candidates(q string, n int, fn func(i int)) {
	var want []int
	eachTrigramBit(q, func(b int) {
		if !slices.Contains(want, b) {
			want = append(want, b)
		}
	})
	if len(want) == 0 {
		for i := range n {
			fn(i)
		}
		return
	}
	set := slices.Clone(x.texts[want[0]])
	for _, b := range want[1:] {
		t := x.texts[b]
		for w := range set {
			if w < len(t) {
				set[w] &= t[w]
			} else {
				set[w] = 0
			}
		}
	}
	for w, word := range set {
		for word != 0 {
			fn(w*64 + bits.TrailingZeros64(word))
			word &= word - 1
		}
	}
}

// eachTrigramBit calls fn with the bits of each trigram of s: two of
// trigramBits, from two hashes, so that trigrams sharing one bit rarely
// share the other.
func eachTrigramBit(s string, fn func(b int)) {
	for i := 0; i+3 <= len(s); i++ {
		t := uint32(s[i])<<16 | uint32(s[i+1])<<8 | uint32(s[i+2])
		fn(int(t * 2654435761 >> 20)) // the top 12 bits: 0 … 4095
		fn(int((t ^ 0x9e3779b9) * 2246822519 >> 20))
	}
}
