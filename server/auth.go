package server

import (
	"net/http"

	"github.com/fieldsync/fieldsync/account"
	"github.com/labstack/echo/v4"
)

func (s *Server) handleLogin(c echo.Context) error {
	var req account.LoginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	tokens, err := s.accounts.Login(c.Request().Context(), req, c.RealIP())
	if err != nil {
		return err
	}
	setNoStore(c)
	return c.JSON(http.StatusOK, tokens)
}

func (s *Server) handleRefresh(c echo.Context) error {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	tokens, err := s.accounts.Refresh(c.Request().Context(), req.RefreshToken)
	if err != nil {
		return err
	}
	setNoStore(c)
	return c.JSON(http.StatusOK, tokens)
}

func (s *Server) handleLogout(c echo.Context) error {
	if err := s.accounts.Logout(c.Request().Context(), identity(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleMe(c echo.Context) error {
	id := identity(c)
	setNoStore(c)
	return c.JSON(http.StatusOK, account.User{ID: id.UserID, Name: id.Name, Role: id.Role, BranchID: id.BranchID})
}

func (s *Server) handleSetPushToken(c echo.Context) error {
	var req account.PushToken
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.accounts.SetPushToken(c.Request().Context(), identity(c), req); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
