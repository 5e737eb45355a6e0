package server

import (
	"net/http"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// The operator's API: the same operations as the fieldsync command line, for admin users.

func (s *Server) handleListBranches(c echo.Context) error {
	branches, err := s.accounts.ListBranches(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"branches": branches})
}

func (s *Server) handleCreateBranch(c echo.Context) error {
	var req struct {
		Name     string `json:"name"`
		TimeZone string `json:"time_zone"`
		Currency string `json:"currency"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	b, err := s.accounts.AddBranch(c.Request().Context(), account.NewBranch{Name: req.Name, TimeZone: req.TimeZone, Currency: req.Currency})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, b)
}

func (s *Server) handleCreateUser(c echo.Context) error {
	var req struct {
		BranchID uuid.UUID `json:"branch_id"`
		Role     string    `json:"role"`
		RepKind  string    `json:"rep_kind"`
		Login    string    `json:"login"`
		Name     string    `json:"name"`
		Password string    `json:"password"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	id, err := s.accounts.CreateUser(c.Request().Context(), account.NewUser{BranchID: req.BranchID, Role: req.Role,
		RepKind: req.RepKind, Login: req.Login, Name: req.Name, Password: req.Password})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"id": id})
}

func (s *Server) handleDisableUser(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	if err := s.accounts.DisableUser(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleRevokeDevice(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	if err := s.accounts.RevokeDevice(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// pathUUID returns the path parameter name as a UUID, or an invalid_value error naming it.
func pathUUID(c echo.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil || id == uuid.Nil {
		return uuid.Nil, fieldsync.InvalidField(name, "The %s in the path must be a UUID.", name)
	}
	return id, nil
}

// handleSetTargets sets a branch's service-level targets (sync.Engine.SetTargets).
func (s *Server) handleSetTargets(c echo.Context) error {
	branch, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	var req struct {
		Targets []sync.Target `json:"targets"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	targets, err := s.engine.SetTargets(c.Request().Context(), identity(c), branch, req.Targets)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"targets": targets})
}
