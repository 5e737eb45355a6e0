package server

import (
	"context"
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/labstack/echo/v4"
)

// headerAppVersion is where an app says which version it is on every pull and push: an app updated
// since its login is then judged by its new version without signing in again.
const headerAppVersion = "X-App-Version"

// deviceRoutes are the branch manager's and the admin's view of devices: their sync state, and the
// remote wipe of a lost one.
func (s *Server) deviceRoutes(auth echo.MiddlewareFunc) {
	e := s.echo
	managers := requireRole(fieldsync.RoleManager)
	e.GET("/v1/branch/devices", s.handleListDevices, noStore, auth, managers)
	e.POST("/v1/devices/:id/wipe", s.handleWipeDevice, auth, managers)
	e.POST("/v1/admin/devices/:id/wipe", s.handleWipeDevice, auth, requireRole(fieldsync.RoleAdmin))
}

func (s *Server) handleListDevices(c echo.Context) error {
	if err := checkQueryParams(c, "user_id", "limit", "after"); err != nil {
		return err
	}
	userID, err := queryUUID(c, "user_id")
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 1, 500)
	if err != nil {
		return err
	}
	page, err := s.accounts.ListDevices(c.Request().Context(), identity(c),
		account.DeviceFilter{UserID: userID, Limit: limit, After: c.QueryParam("after")})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// handleWipeDevice marks a device lost, then aborts the uploads it is still sending. The wipe
// stands even if an abort fails: the cleanup loop removes what is left when the upload expires.
func (s *Server) handleWipeDevice(c echo.Context) error {
	id, err := pathUUID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.accounts.WipeDevice(ctx, identity(c), id); err != nil {
		return err
	}
	if _, err := s.media.AbortDeviceUploads(context.WithoutCancel(ctx), id); err != nil {
		s.log.WarnContext(ctx, "abort uploads of wiped device", "device_id", id, "err", err)
	}
	return c.NoContent(http.StatusNoContent)
}

// requireAppVersion refuses a pull or push from an app older than its platform's minimum with
// upgrade_required, before anything of the request is read, so a push is refused whole. An
// X-App-Version other than the device's recorded one is stored first.
func (s *Server) requireAppVersion(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := identity(c)
		if v := c.Request().Header.Get(headerAppVersion); v != "" && v != id.AppVersion {
			if err := s.accounts.SetAppVersion(c.Request().Context(), id, v); err != nil {
				return err
			}
		}
		if err := s.accounts.CheckAppVersion(id.Platform, id.AppVersion); err != nil {
			return err
		}
		return next(c)
	}
}

// recordSync notes the caller's device made a pull, push or upload, once its answer is computed.
// It is throttled (account.SyncThrottle) and never fails the request: a missed record is logged.
func (s *Server) recordSync(c echo.Context, kind string, cursorVersion int64) {
	id := identity(c)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 2*time.Second)
	defer cancel()
	if err := s.accounts.RecordSync(ctx, id.DeviceID, kind, cursorVersion); err != nil {
		s.log.WarnContext(ctx, "record device sync", "kind", kind, "err", err)
	}
}

// recordUpload records an upload request that succeeded (a created upload, or bytes stored).
func (s *Server) recordUpload(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil && c.Response().Status < http.StatusBadRequest {
			s.recordSync(c, account.ContactUpload, 0)
		}
		return err
	}
}
