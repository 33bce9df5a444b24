package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ImageType says on which hardware an image runs.
type ImageType string

// The image types.
const (
	TypeCPU       ImageType = "cpu"
	TypeGPU       ImageType = "gpu"
	TypeUniversal ImageType = "universal"
)

// Image is an entry of the catalogue that users start notebooks and jobs from.
type Image struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName"`
	Description string    `json:"description"`
	Type        ImageType `json:"type"`
	URL         string    `json:"url"`
	// URLForGPU equals URL unless UseGPUURL is set on a universal image.
	URLForGPU  string `json:"urlForGpu"`
	UseGPUURL  bool   `json:"useGpuUrl"`
	PullSecret string `json:"pullSecret"`
	Global     bool   `json:"global"`
	// Groups may use the image when it is not Global.
	Groups []string `json:"groups"`
	// Owner is "system" for an admin's image, else the owning group's name.
	Owner string `json:"owner"`
	// Recipe is set on custom (built) images.
	Recipe    *Recipe   `json:"build,omitempty"`
	Ready     bool      `json:"ready"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Base is what is known of the base image of a custom image's current
	// build (see RecordBaseCheck); read-only.
	Base
}

// OwnerSystem is the owner of images made by an administrator.
const OwnerSystem = "system"

// MaxDescriptionLen bounds an image description (in characters); the image
// form's field says it and allows no more.
const MaxDescriptionLen = 1000

// Validate checks the fields a person types. It does not resolve names of
// groups or secrets (the store does that when saving) nor parse URLs (the
// caller normalises them with the containers/image parser first).
func (img *Image) Validate() error {
	f := map[string]string{}
	if r := nameReason(img.DisplayName); r != "" {
		f["displayName"] = r
	}
	if r := textReason(img.Description, MaxDescriptionLen); r != "" {
		f["description"] = r
	}
	switch img.Type {
	case TypeCPU, TypeGPU, TypeUniversal:
	case "":
		f["type"] = "Required: cpu, gpu or universal."
	default:
		f["type"] = "Unknown type: choose cpu, gpu or universal."
	}
	if img.URL == "" && img.Recipe == nil {
		f["url"] = "Required."
	}
	if img.UseGPUURL && img.Type != TypeUniversal {
		f["urlForGpu"] = "A separate GPU URL is only for universal images."
	} else if img.UseGPUURL && img.URLForGPU == "" && img.Recipe == nil {
		f["urlForGpu"] = "Required when the GPU URL is on."
	}
	if img.Owner != OwnerSystem && img.Global {
		f["global"] = "A group's own image cannot be global."
	}
	if len(f) > 0 {
		return Invalid(f)
	}
	return nil
}

// normalize fills derived fields: the GPU URL follows the URL unless a
// separate one is asked for, and a global image has no group list.
func (img *Image) normalize() {
	if !img.UseGPUURL || img.Type != TypeUniversal {
		img.UseGPUURL = false
		img.URLForGPU = img.URL
	}
	if img.Global {
		img.Groups = nil
	}
	if img.Groups == nil {
		img.Groups = []string{}
	}
	img.Ready = img.URL != ""
}

// ImageFilter selects images for a listing.
type ImageFilter struct {
	// Query matches name, display name or description, case-insensitively.
	Query string
	Type  ImageType
	// Owner is "system", a group name, or "" for all.
	Owner  string
	Offset int
	Limit  int
}

// CreateImage stores a new image and gives it its generated, unique Name.
func (s *Store) CreateImage(ctx context.Context, img *Image) error {
	if img.Owner == "" {
		img.Owner = OwnerSystem
	}
	if err := img.Validate(); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		refs, err := s.resolveImageRefs(ctx, tx, img)
		if err != nil {
			return err
		}
		img.normalize()
		if img.Name, err = s.freeImageName(ctx, tx, img.DisplayName); err != nil {
			return err
		}
		img.CreatedAt, img.UpdatedAt = s.now(), s.now()
		res, err := tx.ExecContext(ctx, `INSERT INTO images
			(name, display_name, description, type, url, url_for_gpu, use_gpu_url, secret_id, global, owner_group, recipe, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			img.Name, img.DisplayName, img.Description, img.Type, img.URL, img.URLForGPU, img.UseGPUURL,
			refs.secretID, img.Global, refs.ownerID, recipeJSON(img.Recipe), formatTime(img.CreatedAt), formatTime(img.UpdatedAt))
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		return setImageGroups(ctx, tx, id, refs.groupIDs)
	})
}

// UpdateImage saves the editable fields of the image named img.Name. The
// name, owner and creation time never change.
func (s *Store) UpdateImage(ctx context.Context, img *Image) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		old, id, err := s.findImage(ctx, tx, img.Name)
		if err != nil {
			return err
		}
		img.Owner, img.CreatedAt, img.UpdatedAt = old.Owner, old.CreatedAt, s.now()
		if err := img.Validate(); err != nil {
			return err
		}
		refs, err := s.resolveImageRefs(ctx, tx, img)
		if err != nil {
			return err
		}
		img.normalize()
		_, err = tx.ExecContext(ctx, `UPDATE images SET display_name = ?, description = ?, type = ?, url = ?,
			url_for_gpu = ?, use_gpu_url = ?, secret_id = ?, global = ?, recipe = ?, updated_at = ? WHERE id = ?`,
			img.DisplayName, img.Description, img.Type, img.URL, img.URLForGPU, img.UseGPUURL,
			refs.secretID, img.Global, recipeJSON(img.Recipe), formatTime(img.UpdatedAt), id)
		if err != nil {
			return err
		}
		return setImageGroups(ctx, tx, id, refs.groupIDs)
	})
}

// DeleteImage removes an image, its grants and its build records. While a
// build of the image waits or runs it is an ECONFLICT error: its worker
// would run on, and might still push, so the build is cancelled first.
func (s *Store) DeleteImage(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, id, err := s.findImage(ctx, tx, name)
		if err != nil {
			return err
		}
		active, err := queryBuilds(ctx, tx, ` WHERE b.image_id = ? AND `+activeBuildCond, id)
		if err != nil {
			return err
		} else if len(active) > 0 {
			return Errorf(ECONFLICT, "Build #%d of image %s is still %s; cancel the build first, then delete the image.",
				active[0].ID, name, active[0].Status)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM images WHERE id = ?`, id)
		return err
	})
}

// FindImage returns the image with this name.
func (s *Store) FindImage(ctx context.Context, name string) (*Image, error) {
	var img *Image
	err := s.readTx(ctx, func(tx *sql.Tx) (err error) {
		img, _, err = s.findImage(ctx, tx, name)
		return err
	})
	return img, err
}

// ListImages returns one page of the images that match f, and how many
// match in all, from the catalogue (catalogue.go).
func (s *Store) ListImages(ctx context.Context, f ImageFilter) ([]*Image, int, error) {
	cat, err := s.catalogue(ctx)
	if err != nil {
		return nil, 0, err
	}
	imgs, total := cat.list(f)
	return imgs, total, nil
}

const imageColumns = `SELECT i.id, i.name, i.display_name, i.description, i.type, i.url, i.url_for_gpu, i.use_gpu_url,
	COALESCE(sec.name, ''), i.global, COALESCE(og.name, ''), i.recipe, i.created_at, i.updated_at, ` + baseFields + `
	FROM images i LEFT JOIN secrets sec ON sec.id = i.secret_id LEFT JOIN groups og ON og.id = i.owner_group ` + baseJoin

func (s *Store) findImage(ctx context.Context, tx *sql.Tx, name string) (*Image, int64, error) {
	rows, err := tx.QueryContext(ctx, imageColumns+` WHERE i.name = ?`, name)
	if err != nil {
		return nil, 0, err
	}
	imgs, ids, err := scanImages(rows)
	if err != nil {
		return nil, 0, err
	}
	if len(imgs) == 0 {
		return nil, 0, Errorf(ENOTFOUND, "Image %q not found.", name)
	}
	if err := loadImageGroups(ctx, tx, imgs, ids); err != nil {
		return nil, 0, err
	}
	return imgs[0], ids[0], nil
}

func scanImages(rows *sql.Rows) ([]*Image, []int64, error) {
	defer rows.Close()
	var (
		imgs []*Image
		ids  []int64
	)
	for rows.Next() {
		var (
			img                  Image
			id                   int64
			owner                string
			recipe               sql.NullString
			createdAt, updatedAt string
			baseSeenAt           sql.NullString
		)
		if err := rows.Scan(&id, &img.Name, &img.DisplayName, &img.Description, &img.Type, &img.URL, &img.URLForGPU,
			&img.UseGPUURL, &img.PullSecret, &img.Global, &owner, &recipe, &createdAt, &updatedAt,
			&img.BaseDigest, &img.BaseLatestDigest, &baseSeenAt); err != nil {
			return nil, nil, err
		}
		img.Base.fill(baseSeenAt)
		img.Owner = owner
		if owner == "" {
			img.Owner = OwnerSystem
		}
		if recipe.Valid {
			img.Recipe = new(Recipe)
			if err := json.Unmarshal([]byte(recipe.String), img.Recipe); err != nil {
				return nil, nil, err
			}
		}
		img.CreatedAt, img.UpdatedAt = parseTime(createdAt), parseTime(updatedAt)
		img.Ready = img.URL != ""
		img.Groups = []string{}
		imgs, ids = append(imgs, &img), append(ids, id)
	}
	return imgs, ids, rows.Err()
}

// loadImageGroups fills Groups of each image with one query.
func loadImageGroups(ctx context.Context, tx *sql.Tx, imgs []*Image, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	byID := make(map[int64]*Image, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		byID[id], args[i] = imgs[i], id
	}
	rows, err := tx.QueryContext(ctx, `SELECT ig.image_id, g.name FROM image_groups ig JOIN groups g ON g.id = ig.group_id
		WHERE ig.image_id IN (`+placeholders(len(ids))+`) ORDER BY g.name`, args...)
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
		byID[id].Groups = append(byID[id].Groups, name)
	}
	return rows.Err()
}

// imageRefs are the row ids an image's names point at.
type imageRefs struct {
	secretID, ownerID sql.NullInt64
	groupIDs          []int64
}

// resolveImageRefs turns the secret, owner and group names of img into ids,
// reporting unknown names at their field. It runs before normalize, which
// drops a global image's groups: their names are checked first.
func (s *Store) resolveImageRefs(ctx context.Context, tx *sql.Tx, img *Image) (imageRefs, error) {
	var refs imageRefs
	f := map[string]string{}
	if img.PullSecret != "" {
		if id, err := lookupID(ctx, tx, `SELECT id FROM secrets WHERE name = ?`, img.PullSecret); err != nil {
			return refs, err
		} else if id == 0 {
			f["pullSecret"] = fmt.Sprintf("Unknown secret %q.", img.PullSecret)
		} else {
			refs.secretID = sql.NullInt64{Int64: id, Valid: true}
		}
	}
	if img.Owner != OwnerSystem {
		id, err := lookupID(ctx, tx, `SELECT id FROM groups WHERE name = ?`, img.Owner)
		if err != nil {
			return refs, err
		} else if id == 0 {
			return refs, Errorf(ENOTFOUND, "Group %q not found.", img.Owner)
		}
		refs.ownerID = sql.NullInt64{Int64: id, Valid: true}
	}
	img.Groups = distinct(img.Groups)
	ids, reason, err := groupIDs(ctx, tx, img.Groups)
	if err != nil {
		return refs, err
	} else if reason != "" {
		f["groups"] = reason
	}
	if !img.Global {
		// A global image has no group list (normalize): its names are
		// checked all the same, for none is dropped unread.
		refs.groupIDs = ids
	}
	if img.Owner != OwnerSystem {
		// A group's own image is that group's alone.
		refs.groupIDs = []int64{refs.ownerID.Int64}
		img.Groups = []string{img.Owner}
	}
	if len(f) > 0 {
		return refs, Invalid(f)
	}
	return refs, nil
}

func lookupID(ctx context.Context, tx *sql.Tx, query string, arg any) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, query, arg).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

func setImageGroups(ctx context.Context, tx *sql.Tx, imageID int64, groupIDs []int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM image_groups WHERE image_id = ?`, imageID); err != nil {
		return err
	}
	for _, g := range groupIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO image_groups (image_id, group_id) VALUES (?, ?)`, imageID, g); err != nil {
			return err
		}
	}
	return nil
}

// NameSuffixLen is how many random characters follow the "-" that
// SuffixedImageName adds to a display name that is taken.
const NameSuffixLen = 5

// SuffixedImageName is the name an image gets when another image has its
// display name already: the display name, shortened when needed so that the
// whole stays within MaxNameLen (and ends with a letter or digit), "-" and
// suffix: NameSuffixLen random characters of [a-z0-9] when the image is
// created, a placeholder in the name preview.
func SuffixedImageName(displayName, suffix string) string {
	base := displayName
	if room := MaxNameLen - 1 - NameSuffixLen; len(base) > room {
		base = strings.TrimRight(base[:room], "-.")
	}
	return base + "-" + suffix
}

// PreviewImageName tells the name an image with this display name would get
// if it were created now: the display name itself when no image has that
// name and it is not reserved (taken is false), else SuffixedImageName with placeholder for the
// random suffix. An invalid display name is an EINVALID error with the
// reason at "displayName".
func (s *Store) PreviewImageName(ctx context.Context, displayName, placeholder string) (name string, taken bool, err error) {
	if r := nameReason(displayName); r != "" {
		return "", false, Invalid(map[string]string{"displayName": r})
	}
	err = s.readTx(ctx, func(tx *sql.Tx) error {
		id, err := lookupID(ctx, tx, `SELECT id FROM images WHERE name = ?`, displayName)
		taken = id != 0 || reservedImageNames[displayName]
		return err
	})
	if err != nil || !taken {
		return displayName, false, err
	}
	return SuffixedImageName(displayName, placeholder), true, nil
}

// reservedImageNames are names no image gets, because a page's address ends
// in them: /admin/images/new is the add form, so an image named "new" could
// never be opened. An image whose display name is one of them gets a
// suffixed name, as when the name is taken.
var reservedImageNames = map[string]bool{"new": true}

// freeImageName returns displayName when no image has that name yet (and it
// is not reserved), else SuffixedImageName with a random suffix that no image
// has either.
func (s *Store) freeImageName(ctx context.Context, tx *sql.Tx, displayName string) (string, error) {
	name := displayName
	for try := 0; try < 20; try++ {
		id, err := lookupID(ctx, tx, `SELECT id FROM images WHERE name = ?`, name)
		if err != nil || (id == 0 && !reservedImageNames[name]) {
			return name, err
		}
		name = SuffixedImageName(displayName, randomSuffix(NameSuffixLen))
	}
	return "", Errorf(ECONFLICT, "Could not find a free name for %q.", displayName)
}

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomSuffix(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b)
}

func recipeJSON(r *Recipe) sql.NullString {
	if r == nil {
		return sql.NullString{}
	}
	b, _ := json.Marshal(r)
	return sql.NullString{String: string(b), Valid: true}
}
