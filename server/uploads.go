package server

import "github.com/labstack/echo/v4"

// uploadRoutes registers the documents' uploads and downloads.
func (s *Server) uploadRoutes(auth echo.MiddlewareFunc) {}
