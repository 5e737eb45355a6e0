package server

import "github.com/labstack/echo/v4"

// eventRoutes registers the live event stream for screens.
func (s *Server) eventRoutes(auth echo.MiddlewareFunc) {}
