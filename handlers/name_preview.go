package handlers

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"imagehub/store"
	"imagehub/views"
)

// namePreview answers, as the display name is typed, with the name the store
// would give the image: the display name itself when no image has it yet,
// else the display name with "-" and five random characters (shown as xxxxx).
// An invalid display name gets its reason instead.
func (s *Server) namePreview(c echo.Context) error {
	dn := c.QueryParam("displayName")
	p := views.NamePreviewProps{}
	if dn != "" {
		p = s.previewName(c.Request().Context(), dn)
	}
	return render(c, http.StatusOK, views.NamePreview(p))
}

func (s *Server) previewName(ctx context.Context, dn string) views.NamePreviewProps {
	name, taken, err := s.store.PreviewImageName(ctx, dn, strings.Repeat("x", store.NameSuffixLen))
	switch store.ErrorCode(err) {
	case "":
		return views.NamePreviewProps{Name: name, Taken: taken}
	case store.EINVALID:
		return views.NamePreviewProps{Reason: store.ErrorFields(err)["displayName"]}
	}
	s.log.Error("name preview", "err", err)
	return views.NamePreviewProps{Reason: "The name cannot be previewed right now."}
}
