package server

import (
	"net/http"
	"strings"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// uploadsPath is where the tus upload server lives (docs/protocol.md, §7 Uploads).
const uploadsPath = "/v1/uploads"

// isUploadPath reports whether a request path is the upload server's: its bodies are documents,
// bounded by the upload's own limits rather than the API's body limit.
func isUploadPath(p string) bool {
	return p == uploadsPath || strings.HasPrefix(p, uploadsPath+"/")
}

// uploadRoutes registers the documents' uploads and downloads. The tus protocol (its headers and
// refusals) is media.Service.ServeTus's; here it is only routed, behind authentication, and its
// errors answered as every other (handleError). OPTIONS is discovery and needs no credentials. Both /v1/uploads and
// /v1/uploads/ are served, since clients are configured with either.
func (s *Server) uploadRoutes(auth echo.MiddlewareFunc) {
	e := s.echo
	collection := func(c echo.Context) error {
		return s.media.ServeTus(c.Response(), c.Request(), "")
	}
	one := func(c echo.Context) error {
		return s.media.ServeTus(c.Response(), c.Request(), c.Param("id"))
	}
	for _, p := range []string{uploadsPath, uploadsPath + "/"} {
		e.OPTIONS(p, collection)
		e.POST(p, collection, auth, s.recordUpload)
	}
	e.OPTIONS(uploadsPath+"/:id", one)
	e.HEAD(uploadsPath+"/:id", one, auth)
	e.PATCH(uploadsPath+"/:id", one, auth, s.recordUpload)
	e.DELETE(uploadsPath+"/:id", one, auth)
	// For clients that cannot send PATCH (tus-java-client on some Android versions): POST with
	// X-HTTP-Method-Override.
	e.POST(uploadsPath+"/:id", one, auth, s.recordUpload)

	e.GET("/v1/documents/:id/content", func(c echo.Context) error { return s.handleDownload(c, false) }, auth)
	e.GET("/v1/documents/:id/thumbnail", func(c echo.Context) error { return s.handleDownload(c, true) }, auth)
}

// handleDownload answers 302 to a short-lived presigned URL of a document's file or thumbnail.
func (s *Server) handleDownload(c echo.Context, thumbnail bool) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil || id == uuid.Nil {
		return fieldsync.InvalidField("id", "The id in the path must be a UUID.")
	}
	url, err := s.media.DownloadURL(c.Request().Context(), identity(c), id, thumbnail)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.Redirect(http.StatusFound, url)
}
