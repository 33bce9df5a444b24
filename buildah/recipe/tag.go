package recipe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// recipeFormat is part of what Tag hashes. Bump it when the generated
// Containerfile changes in a way that should rebuild every image (the old
// tag would otherwise say "up to date").
const recipeFormat = 1

// Tag returns the image tag of a recipe: the first 12 hex characters of
// the SHA-256 of its canonical form, the JSON of the base reference and the
// three parsed lists (trimmed, comments and blank lines removed, order kept).
// Two recipes that install the same packages on the same base get the same
// tag, so an unchanged recipe is found "up to date" in the registry. The pull
// secret is not part of it: it changes how the base is fetched, not what is
// built. JSON keeps the form unambiguous (no separator can be forged by a
// package), and nil and empty lists hash alike.
func Tag(base string, p Packages) string {
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	canonical := struct {
		Format int      `json:"format"`
		Base   string   `json:"base"`
		Apt    []string `json:"apt"`
		Conda  []string `json:"conda"`
		Pip    []string `json:"pip"`
	}{recipeFormat, base, nonNil(p.Apt), nonNil(p.Conda), nonNil(p.Pip)}
	data, err := json.Marshal(canonical)
	if err != nil {
		// Marshalling strings and string slices cannot fail.
		panic(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:12]
}
