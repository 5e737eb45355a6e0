package server

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPI is the description of every endpoint. TestOpenAPIDescribesEveryRoute keeps it true.
//
//go:embed openapi.json
var openAPI []byte

func handleOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPI)
}
