package server

import "github.com/labstack/echo/v4"

// screenRoutes registers the processors' and managers' screens: lists, details and commands.
func (s *Server) screenRoutes(auth echo.MiddlewareFunc) {}
